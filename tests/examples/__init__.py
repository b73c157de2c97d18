"""The worked example of the contract (a restaurant opening, 开办餐饮店), kept in the
repository so the suite needs nothing outside the checkout (README.md beside it)."""

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
RESTAURANT_EVENTS = EXAMPLES / "restaurant-case.jsonl"
RESTAURANT_EXPECTED = EXAMPLES / "restaurant-case.expected.json"
