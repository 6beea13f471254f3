"""Best-of-L at CPU scale on the generated arithmetic problems: ``python -m experiments.small_scale.run``."""
