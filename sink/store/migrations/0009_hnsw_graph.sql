-- A denser HNSW graph: each moment is linked while looking at 128 candidates instead of 64. At a
-- million moments (make bench-search) recall@10 at ef_search 400 rose from 0.94–0.96 to
-- 0.98–0.99, so queries can look at half the candidates (5.5 ms against 9 ms at p50) and still
-- find more of the true nearest. Each insert into the index looks at twice the candidates;
-- moments are rare beside frames. Only moments indexed from now on are linked this way, since
-- rebuilding a deployment's index here would hold back its start for minutes (6 per million
-- moments on 2 cores); REINDEX INDEX CONCURRENTLY video_events_embedding rebuilds it while
-- search goes on (README, Configuration).
ALTER INDEX video_events_embedding SET (ef_construction = 128);
