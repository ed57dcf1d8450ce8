"""The national code tables as CSV data files; a package only so that the CSVs ship with it."""
