"""members and their badges (identities)"""

from alembic import op

revision = "a1f0c0de0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE members (id serial PRIMARY KEY, email text NOT NULL UNIQUE,"
        " pw text NOT NULL, duress_pw text NOT NULL, wallet text NOT NULL)"
    )
    op.execute(
        "CREATE TABLE badges (id serial PRIMARY KEY, member_id int NOT NULL REFERENCES members,"
        " status text NOT NULL DEFAULT 'pending', token_no int)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE badges; DROP TABLE members")
