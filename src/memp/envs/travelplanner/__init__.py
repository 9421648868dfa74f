"""TravelPlanner (Xie et al., 2024): the database (:mod:`.database`), queries and their
constraints (:mod:`.query`, :mod:`.constraints`), plans and the benchmark's evaluation
(:mod:`.evaluate`), and the tool environment (:mod:`.env`)."""

from __future__ import annotations

from memp.envs.travelplanner.constraints import Constraints, parse_constraints
from memp.envs.travelplanner.database import (
    DB_FILES,
    ORIGIN_DB,
    ORIGIN_QUERIES,
    Database,
    before_paren,
    from_to,
    name_city,
)
from memp.envs.travelplanner.env import (
    INSTRUCTIONS,
    MODES,
    SEMANTICS,
    SPLITS,
    TravelPlannerEnv,
    default_data,
    default_database,
    load_database,
)
from memp.envs.travelplanner.evaluate import (
    COMMONSENSE,
    HARD,
    PLAN_KEYS,
    Check,
    Evaluator,
    Rates,
    Result,
    Verdict,
    aggregate,
    evaluate_plan,
    format_plan,
    parse_plan,
)
from memp.envs.travelplanner.query import (
    Query,
    disagreements,
    load_queries,
    query_from_record,
    query_from_text,
)

__all__ = [
    "COMMONSENSE",
    "DB_FILES",
    "HARD",
    "INSTRUCTIONS",
    "MODES",
    "ORIGIN_DB",
    "ORIGIN_QUERIES",
    "PLAN_KEYS",
    "SEMANTICS",
    "SPLITS",
    "Check",
    "Constraints",
    "Database",
    "Evaluator",
    "Query",
    "Rates",
    "Result",
    "TravelPlannerEnv",
    "Verdict",
    "aggregate",
    "before_paren",
    "default_data",
    "default_database",
    "disagreements",
    "evaluate_plan",
    "format_plan",
    "from_to",
    "load_database",
    "load_queries",
    "name_city",
    "parse_constraints",
    "parse_plan",
    "query_from_record",
    "query_from_text",
]
