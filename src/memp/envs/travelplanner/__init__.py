"""TravelPlanner (Xie et al., 2024): the database and query files (:mod:`.database`),
plans and the benchmark's constraints (:mod:`.evaluate`), and the tool environment
(:mod:`.env`)."""

from __future__ import annotations

from memp.envs.travelplanner.database import (
    DB_FILES,
    ORIGIN_DB,
    ORIGIN_QUERIES,
    Database,
    before_paren,
    from_to,
    load_queries,
    name_city,
)
from memp.envs.travelplanner.env import INSTRUCTIONS, SEMANTICS, SPLITS, TravelPlannerEnv
from memp.envs.travelplanner.evaluate import PLAN_KEYS, Evaluator, Result, format_plan, parse_plan

__all__ = [
    "DB_FILES",
    "INSTRUCTIONS",
    "ORIGIN_DB",
    "ORIGIN_QUERIES",
    "PLAN_KEYS",
    "SEMANTICS",
    "SPLITS",
    "Database",
    "Evaluator",
    "Result",
    "TravelPlannerEnv",
    "before_paren",
    "format_plan",
    "from_to",
    "load_queries",
    "name_city",
    "parse_plan",
]
