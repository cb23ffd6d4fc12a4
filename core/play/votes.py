"""Votes of the "Real or dream?" tab in a local SQLite file, and how often people were fooled.

A round is stored before its clips are shown, with the side (A or B) the real clip was put on,
so a vote is scored against what the voter saw and nothing about the answer travels to the
page. One vote per round (the primary key says so). Every call opens its own connection:
Gradio runs handlers on several threads, and SQLite (WAL journal, a busy timeout) serialises
the writers; every statement takes its values as parameters.
"""

from __future__ import annotations

import math
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

SIDES = ("A", "B")

SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    id TEXT PRIMARY KEY,            -- a random token, held only in the voter's session
    model TEXT NOT NULL,
    game TEXT NOT NULL,
    seed INTEGER NOT NULL,
    real_side TEXT NOT NULL CHECK (real_side IN ('A', 'B')),
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    round_id TEXT PRIMARY KEY REFERENCES rounds (id),  -- one vote per round
    picked TEXT NOT NULL CHECK (picked IN ('A', 'B')), -- the side the voter called real
    fooled INTEGER NOT NULL,                           -- 1: the dream was called real
    created_at REAL NOT NULL
);
"""


class VoteError(ValueError):
    """A vote that cannot count: unknown round, a second vote, a side other than A or B."""


@dataclass
class Round:
    id: str
    model: str
    game: str
    seed: int
    real_side: str  # where the real clip was shown; the dream is on the other side
    created_at: float = 0.0  # when the pair was dealt (time.time())


@dataclass
class Tally:
    label: str  # "all", or "model / game"
    votes: int
    fooled: int

    @property
    def rate(self) -> float | None:
        """Share of votes that called the dream real (None before any vote); 50% = people cannot tell."""
        return self.fooled / self.votes if self.votes else None

    def interval(self, z: float = 1.96) -> tuple[float, float] | None:
        """Wilson score 95% interval of the rate: honest with few votes, unlike rate +- z * stderr."""
        if not self.votes:
            return None
        n, p = self.votes, self.fooled / self.votes
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


class VoteStore:
    def __init__(self, path: str | Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s  # how long a writer waits for another to finish before giving up
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; persists in the file
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout_s)

    def new_round(self, model: str, game: str, seed: int, real_side: str) -> Round:
        if real_side not in SIDES:
            raise VoteError(f"the real clip goes on side A or B, not {real_side!r}")
        round_ = Round(secrets.token_hex(8), model, game, int(seed), real_side, time.time())
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO rounds (id, model, game, seed, real_side, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (round_.id, model, game, round_.seed, real_side, round_.created_at),
            )
        return round_

    def get_round(self, round_id: str) -> Round:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT id, model, game, seed, real_side, created_at FROM rounds WHERE id = ?", (round_id,)
            ).fetchone()
        if row is None:
            raise VoteError(f"no clip pair {round_id!r} was shown here; press 'New pair' and vote on that one")
        return Round(*row)

    def vote(self, round_id: str, picked: str) -> tuple[Round, bool]:
        """Record that the voter called side `picked` real; returns (the round, whether they were fooled)."""
        if picked not in SIDES:
            raise VoteError(f"vote for side A or B, not {picked!r}")
        round_ = self.get_round(round_id)
        fooled = picked != round_.real_side
        try:
            with closing(self._connect()) as db, db:
                db.execute(
                    "INSERT INTO votes (round_id, picked, fooled, created_at) VALUES (?, ?, ?, ?)",
                    (round_id, picked, int(fooled), time.time()),
                )
        except sqlite3.IntegrityError:  # the primary key: this round already has its vote
            raise VoteError("this pair already has your vote; press 'New pair' for another") from None
        return round_, fooled

    def tallies(self) -> list[Tally]:
        """All votes first, then one tally per model and game (most votes first)."""
        with closing(self._connect()) as db:
            overall = db.execute("SELECT COUNT(*), COALESCE(SUM(fooled), 0) FROM votes").fetchone()
            groups = db.execute(
                "SELECT rounds.model, rounds.game, COUNT(*), SUM(votes.fooled) FROM votes "
                "JOIN rounds ON rounds.id = votes.round_id "
                "GROUP BY rounds.model, rounds.game ORDER BY COUNT(*) DESC, rounds.model, rounds.game"
            ).fetchall()
        return [Tally("all", *overall)] + [
            Tally(f"{model} / {game}", votes, fooled) for model, game, votes, fooled in groups
        ]
