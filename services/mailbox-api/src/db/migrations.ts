/** One versioned schema change; applied once, in order, inside a transaction. */
export interface Migration {
  version: number
  name: string
  sql: string
}

/**
 * The schema: the spec's tables (groups, mail_keypackages, mail_welcomes) in PostgreSQL types, plus
 * what the design adds: DM hints, the NIP-98 replay guard, the shared rate-limit counters, the ids of
 * the hints already applied and each group's message count.
 * Never edit an applied migration; add the next one.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE groups (
  group_id      TEXT PRIMARY KEY,
  display_name  TEXT,
  avatar_url    TEXT,
  owner_pubkey  TEXT,
  last_epoch    BIGINT,
  last_event_ts BIGINT,
  relays        JSONB NOT NULL DEFAULT '[]'::jsonb,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_groups_updated ON groups (updated_at);

CREATE TABLE mail_keypackages (
  seq              BIGSERIAL UNIQUE,
  id               TEXT PRIMARY KEY,
  recipient_pubkey TEXT NOT NULL,
  sender_pubkey    TEXT NOT NULL,
  content_b64      TEXT NOT NULL,
  tags             JSONB,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at       TIMESTAMPTZ NOT NULL,
  picked_up_at     TIMESTAMPTZ
);
CREATE INDEX idx_keypackages_recipient ON mail_keypackages (recipient_pubkey, seq);
CREATE INDEX idx_keypackages_expires ON mail_keypackages (expires_at);

CREATE TABLE mail_welcomes (
  seq              BIGSERIAL UNIQUE,
  id               TEXT PRIMARY KEY,
  recipient_pubkey TEXT NOT NULL,
  sender_pubkey    TEXT NOT NULL,
  group_id         TEXT NOT NULL,
  welcome_b64      TEXT NOT NULL,
  ratchet_tree_b64 TEXT,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at       TIMESTAMPTZ NOT NULL,
  picked_up_at     TIMESTAMPTZ
);
CREATE INDEX idx_welcomes_recipient ON mail_welcomes (recipient_pubkey, seq);
CREATE INDEX idx_welcomes_expires ON mail_welcomes (expires_at);

CREATE TABLE dm_hints (
  seq              BIGSERIAL UNIQUE,
  event_id         TEXT NOT NULL,
  recipient_pubkey TEXT NOT NULL,
  sender_pubkey    TEXT NOT NULL,
  event_created_at BIGINT NOT NULL,
  received_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at       TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (event_id, recipient_pubkey)
);
CREATE INDEX idx_dm_hints_recipient ON dm_hints (recipient_pubkey, seq);
CREATE INDEX idx_dm_hints_expires ON dm_hints (expires_at);

CREATE TABLE nip98_replay (
  sig        TEXT PRIMARY KEY,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_nip98_replay_expires ON nip98_replay (expires_at);

CREATE TABLE rate_limits (
  key    VARCHAR(255) PRIMARY KEY,
  points INTEGER NOT NULL DEFAULT 0,
  expire BIGINT
);
`,
  },
  {
    version: 2,
    name: 'hints seen',
    sql: `
-- The Nostr event ids of the hints already applied: a redelivered hint finds its id here and changes nothing.
CREATE TABLE hints_seen (
  event_id TEXT PRIMARY KEY,
  seen_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_hints_seen_seen_at ON hints_seen (seen_at);
`,
  },
  {
    version: 3,
    name: 'group message count',
    sql: `
-- The kind-445 hints applied to each group (one per event id): what the registry can count from Marmot
-- traffic, whose 445s carry no epoch. Groups already there start at 0.
ALTER TABLE groups ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
`,
  },
  {
    version: 4,
    name: 'mailbox fillfactor',
    sql: `
-- Room on each page for the update a pickup makes (picked_up_at): PostgreSQL then writes the new row version
-- on the same page without new index entries (a HOT update) and logs only what changed, instead of a whole
-- 1-2 KB row with four index insertions. New pages only, and under a SHARE UPDATE EXCLUSIVE lock: instances
-- still serving keep reading and writing while it runs. The mailbox bench's pickup statement logged 2.2
-- instead of 10.9 MB of WAL (docs/performance-log.md, seventeenth session).
ALTER TABLE mail_keypackages SET (fillfactor = 80);
ALTER TABLE mail_welcomes SET (fillfactor = 80);
`,
  },
]
