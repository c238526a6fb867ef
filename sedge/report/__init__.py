"""What the chapters show: figure and table helpers, and Pareto fronts."""
