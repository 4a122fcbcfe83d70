-- Token families (revocation of everything issued from one authorization), redirect URIs
-- bound to clients and codes, and the family a redeemed code produced.
ALTER TABLE oauth_clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ADD COLUMN redirect_uri TEXT;
ALTER TABLE oauth_codes ADD COLUMN family_id TEXT;
CREATE TABLE oauth_families (
    family_id      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX oauth_families_user ON oauth_families(user_id);
-- Families of refresh tokens written by the first release.
INSERT INTO oauth_families (family_id, client_id, user_id, scope, created_at, revoked_at, revoked_reason)
SELECT family_id, MIN(client_id), MIN(user_id), MIN(scope), MIN(issued_at), MAX(revoked_at), MAX(revoked_reason)
FROM refresh_tokens GROUP BY family_id;
