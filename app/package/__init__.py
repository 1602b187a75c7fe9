"""The dataset package of a session or a talk: a zip a reader can cite, validate and read back
without this app.

It holds ``datapackage.json`` (Frictionless Data Package v2) describing four CSV tables
(``responses``: one row per answer, with the columns of answer formats of their own, a
ranking's ``rank_1``...; ``sessions``; ``questions``; ``options``), ``CITATION.cff``,
the codebook as Markdown and as DDI-Codebook 2.5 XML (every language of the talk),
``methods.md`` and the results JSON.

The privacy rules are those of the exports (``app.export``): a phone is its per-session
pseudonym (``Participant.public_id``), nothing about the person is stored or written, and the
time of an answer is coarsened to when its phase opened unless the presenter asks for exact
times. A talk's package holds the sessions its pooled results are built from (never a
rehearsal), as its results JSON does.

Building is split in two: ``gather_*`` reads the database, ``build_zip`` only writes bytes, and
the same data give the same bytes (entries in a fixed order, dated by the data, not the clock).

The modules, by job: ``base`` (the options, the gathered data, the licences), ``gather``
(reading the database), ``tables`` (the CSV tables and ``datapackage.json``), ``texts``
(``CITATION.cff``, the codebooks, ``methods.md``) and ``build`` (the files and the zip).
"""

from app.package.base import (
    DEFAULT_LICENCE,
    LICENCES,
    TIMES,
    Answer,
    Gathered,
    PackageError,
    PackageOptions,
    Total,
    package_version,
    software_version,
)
from app.package.build import build_zip, filename, files, session_package, talk_package
from app.package.gather import gather_session, gather_talk
from app.package.texts import citation_cff, codebook_ddi, codebook_md, methods_md

__all__ = [
    "DEFAULT_LICENCE",
    "LICENCES",
    "TIMES",
    "Answer",
    "Gathered",
    "PackageError",
    "PackageOptions",
    "Total",
    "build_zip",
    "citation_cff",
    "codebook_ddi",
    "codebook_md",
    "filename",
    "files",
    "gather_session",
    "gather_talk",
    "methods_md",
    "package_version",
    "session_package",
    "software_version",
    "talk_package",
]
