"""The month-end job: calendar, progress, delivery by e-mail."""
