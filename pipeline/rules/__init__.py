"""Rules in force and the decisions made from them: totals, eligibility, quotas, ranking."""
