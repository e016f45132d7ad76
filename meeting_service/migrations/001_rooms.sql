CREATE TABLE rooms (
    id text PRIMARY KEY,
    code text NOT NULL UNIQUE
);
