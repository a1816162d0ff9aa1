"""papers, emergency events, the chain cursor and the monitor's pings"""

from alembic import op

revision = "b2e1d1ce0002"
down_revision = "a1f0c0de0001"


def upgrade() -> None:
    op.execute(
        "CREATE TABLE papers (id serial PRIMARY KEY, member_id int NOT NULL REFERENCES members,"
        " sha256 text NOT NULL, state text NOT NULL DEFAULT 'anchored')"
    )
    op.execute(
        "CREATE TABLE emergency_events (id serial PRIMARY KEY,"
        " member_id int NOT NULL REFERENCES members, phase text NOT NULL DEFAULT 'pending',"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(
        "CREATE TABLE chain_cursor (id int PRIMARY KEY, last_block bigint NOT NULL,"
        " moved_at timestamptz NOT NULL)"
    )
    op.execute("CREATE TABLE monitor_pings (pinged_at timestamptz NOT NULL, ok boolean NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE monitor_pings, chain_cursor, emergency_events, papers")
