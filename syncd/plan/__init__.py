"""Planning: from HR rosters, the directory and the clocks to a plan of actions."""

from syncd.plan.context import PlanInput
from syncd.plan.emit import decision_id
from syncd.plan.planner import make_plan

__all__ = ["PlanInput", "decision_id", "make_plan"]
