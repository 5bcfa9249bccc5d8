"""distill_lessons: the library behind the distill-lessons book.

Each module holds one idea and says which chapter introduces it. Import the
modules you need (``from distill_lessons import surprise``); this package
imports none of them eagerly, so a notebook pays only for what it uses.
"""

__version__ = "0.1.0"
