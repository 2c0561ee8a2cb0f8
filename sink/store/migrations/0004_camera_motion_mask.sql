-- Areas of a camera's picture whose movement the motion gate ignores (a clock, trees), as
-- polygons of points in fractions of the frame: [[{"x":0,"y":0},{"x":0.2,"y":0},...], ...].
ALTER TABLE cameras ADD COLUMN motion_mask jsonb NOT NULL DEFAULT '[]';
