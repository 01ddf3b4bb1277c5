"""The restricted-Python policy at the analyst's door.

One policy, two checkpoints: the rules live in `runner/python_policy.py` (standard library only,
so the sandboxed runner can check the same program again before it runs anything); here a
refusal becomes a REJECTED run with PYTHON_POLICY_VIOLATION before anything is dispatched.
"""

from __future__ import annotations

from analyst_service.errors import PythonPolicyError
from runner.python_policy import PolicyViolation, check_python


def check_python_program(code: str) -> None:
    """Refuse a program the restricted-Python policy does not allow.

    Raises:
        PythonPolicyError: Naming the construct and its line.
    """
    try:
        check_python(code)
    except PolicyViolation as violation:
        raise PythonPolicyError(message=str(violation),
                                violations=[("python_code", str(violation))],
                                metadata={"line": str(violation.line)}) from None
