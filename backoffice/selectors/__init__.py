"""What operators and compliance read across apps: the trace of any id, the dashboards."""
