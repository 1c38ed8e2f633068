"""Examples that ship with hbeam: ``python -m hbeam.examples.run`` (what ``make run`` starts)."""
