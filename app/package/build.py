"""The package as files and as a zip: the same data and options give the same bytes."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC

from sqlmodel import Session

from app import export
from app.models import PollSession, Talk
from app.package.base import Gathered, PackageOptions, package_version
from app.package.gather import gather_session, gather_talk
from app.package.tables import _descriptor, _tables
from app.package.texts import citation_cff, codebook_ddi, codebook_md, methods_md


def files(g: Gathered, options: PackageOptions) -> dict[str, bytes]:
    """Every file of the package, by name, in the order the zip holds them."""
    tables = _tables(g, options)
    descriptor = _descriptor(g, options, tables)
    if not options.answers:  # and each phone's texts: with its pseudonym they are answer-level
        tables.pop("data/responses.csv")
        tables.pop("data/text_answers.csv", None)
        answer_level = ("responses", "text_answers")
        descriptor["resources"] = [
            r for r in descriptor["resources"] if r["name"] not in answer_level
        ]
    out = {
        "datapackage.json": (json.dumps(descriptor, ensure_ascii=False, indent=2) + "\n").encode(),
        "CITATION.cff": citation_cff(g, options).encode(),
        "codebook.md": codebook_md(g).encode(),
        "codebook.xml": codebook_ddi(g, options),
        "methods.md": methods_md(g, options).encode(),
        "results.json": export.json_text(g.results_json).encode(),
    }
    for name, document in sorted(g.extras.items()):
        out[name] = export.json_text(document).encode()
    out.update(tables)
    return out


def build_zip(g: Gathered, options: PackageOptions) -> bytes:
    """The package as zip bytes: the same data and options give the same bytes."""
    stamp = g.updated.astimezone(UTC)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, 0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, content in files(g, options).items():
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def filename(g: Gathered) -> str:
    return f"beliefgap-{g.kind}-{g.name}-{package_version(g)}.zip".lower()


def session_package(db: Session, poll: PollSession, options: PackageOptions) -> tuple[str, bytes]:
    g = gather_session(db, poll)
    return filename(g), build_zip(g, options)


def talk_package(db: Session, talk: Talk, options: PackageOptions) -> tuple[str, bytes]:
    g = gather_talk(db, talk)
    return filename(g), build_zip(g, options)
