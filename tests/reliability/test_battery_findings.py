"""Bad inputs that benchmarks/bad_input_battery.py found accepted or mishandled, one test
per class (issue 16): each is refused with one `error:` line and exit 2."""
from conftest import fails


def test_plan_refuses_a_head_without_labels():
    fails("plan", "--model", "builtin:tiny-xlmr", "--labels", "0", match="--labels")
