"""Workbook writing and the reports people read: office, Sở, school feedback, progress."""
