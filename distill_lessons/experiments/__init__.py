"""The experiments behind ``python -m distill_lessons.reproduce NAME``.

One module per experiment; each provides ``main(argv) -> int``.
"""
