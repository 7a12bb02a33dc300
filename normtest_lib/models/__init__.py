"""Placeholder until the model factory lands."""


def model_names() -> list[str]:
    return ["small"]
