"""What users write: DAGs, operators, TaskFlow decorators, params, trigger rules."""
