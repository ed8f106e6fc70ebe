"""practice patients: the flag table, and a practice patient for every existing care team

Revision ID: 0008
Revises: 0007
Created: 2026-11-24 10:28:15.147535
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# As hub/practice.py names them (migrations import no hub code).
PRACTICE_NAME = "Practice patient (not real)"


def _practice_patient_id(team_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"porchlight:practice:{team_id}"))


def upgrade() -> None:
    op.create_table(
        "practice_patients",
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_practice_patients_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_practice_patients_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_practice_patients")),
        sa.UniqueConstraint("team_id", name=op.f("uq_practice_patients_team_id")),
    )
    # Teams made before practice patients existed get theirs now (later ones when their
    # clinic page first asks for it).
    teams = sa.table("teams", sa.column("id", sa.String))
    patients = sa.table(
        "patients",
        sa.column("id", sa.String),
        sa.column("display_name", sa.String),
        sa.column("created", sa.DateTime(timezone=True)),
    )
    team_patients = sa.table(
        "team_patients", sa.column("patient_id", sa.String), sa.column("team_id", sa.String)
    )
    practice = sa.table(
        "practice_patients",
        sa.column("patient_id", sa.String),
        sa.column("team_id", sa.String),
        sa.column("created", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    now = datetime.now(UTC)
    for (team_id,) in conn.execute(sa.select(teams.c.id)).all():
        patient_id = _practice_patient_id(team_id)
        if (
            conn.execute(sa.select(patients.c.id).where(patients.c.id == patient_id)).first()
            is None
        ):
            conn.execute(
                sa.insert(patients).values(id=patient_id, display_name=PRACTICE_NAME, created=now)
            )
            conn.execute(sa.insert(team_patients).values(patient_id=patient_id, team_id=team_id))
        conn.execute(
            sa.insert(practice).values(patient_id=patient_id, team_id=team_id, created=now)
        )


def downgrade() -> None:
    op.drop_table("practice_patients")
