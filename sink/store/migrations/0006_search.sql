-- Hybrid search: nearest neighbours over the caption embeddings (MiniLM's are L2-normalised, so
-- cosine distance), per-camera weights for ranking, the security synonym list as data, and pins.

CREATE INDEX video_events_embedding ON video_events USING hnsw (embedding vector_cosine_ops)
    WITH (m = 16, ef_construction = 64);
-- The exact plan of a selective filter: one tenant's cameras over a time range.
CREATE INDEX video_events_tenant_video_time ON video_events (tenant, video_id, started_at);

-- 0 to 1: how much a camera's moments are lifted in ranking (an entrance over a car park).
ALTER TABLE cameras ADD COLUMN priority real NOT NULL DEFAULT 0 CHECK (priority >= 0 AND priority <= 1);

-- Groups of words that mean the same to a security team. Tenant '' holds the defaults; a tenant's
-- own groups replace them all once it has any.
CREATE TABLE search_synonyms (
    tenant text NOT NULL,
    words  text[] NOT NULL CHECK (cardinality(words) >= 2),
    PRIMARY KEY (tenant, words)
);
INSERT INTO search_synonyms (tenant, words) VALUES
    ('', '{person,people,man,men,woman,women,pedestrian,pedestrians,guy,guys,someone,somebody,human}'),
    ('', '{car,cars,vehicle,vehicles,sedan,suv,automobile,hatchback}'),
    ('', '{truck,trucks,lorry,lorries,van,pickup}'),
    ('', '{bicycle,bicycles,bike,bikes,cyclist,cyclists}'),
    ('', '{motorcycle,motorcycles,motorbike,motorbikes,scooter,moped}'),
    ('', '{backpack,backpacks,bag,bags,handbag,handbags,rucksack,purse}'),
    ('', '{suitcase,suitcases,luggage,baggage}'),
    ('', '{bus,buses,coach}'),
    ('', '{dog,dogs,puppy,hound}'),
    ('', '{cat,cats,kitten}'),
    ('', '{child,children,kid,kids,boy,girl}');

-- Moments an admin puts first for a query, in position order. query is the normalised text:
-- lower case, words separated by single spaces.
CREATE TABLE search_pins (
    tenant     text NOT NULL,
    query      text NOT NULL,
    moment_uid uuid NOT NULL REFERENCES video_events (moment_uid) ON DELETE CASCADE,
    position   integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, query, moment_uid)
);
