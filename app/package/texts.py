"""The package's texts: ``CITATION.cff``, the codebook as Markdown and as DDI-Codebook 2.5 XML
(every language of the talk), and ``methods.md``."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from app import export, formats
from app.db import ROOT
from app.package.base import (
    DDI_NAMESPACE,
    LICENCES,
    Gathered,
    PackageOptions,
    _is_scale,
    _label,
    _live,
    _number,
    _title,
    answer_of,
    format_columns,
    own_cells,
    own_columns,
    package_version,
    software_version,
)

# --------------------------------------------------------------------------- CITATION.cff


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text, ensure_ascii=False)


def citation_cff(g: Gathered, options: PackageOptions) -> str:
    names = options.contributors or (
        f"The presenter of {_label(g.titles, g.languages[0] if g.languages else 'en')}",
    )
    lines = [
        "cff-version: 1.2.0",
        'message: "If you use this dataset, please cite it as below."',
        "type: dataset",
        f"title: {_yaml(_title(g))}",
        f"version: {_yaml(package_version(g))}",
        f"date-released: {_yaml(g.updated.date().isoformat())}",
        f"license: {options.licence}",
        "authors:",
        *[f"  - name: {_yaml(name)}" for name in names],
        f"abstract: {_yaml('Answers of a live audience poll measuring a belief gap (beliefgap).')}",
        "keywords:",
        '  - "belief gap"',
        '  - "audience poll"',
    ]
    if options.url:
        lines.append(f"url: {_yaml(options.url)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- codebooks

CODEBOOK_WORDS = {
    "en": {
        "title": "Codebook",
        "files": "Files",
        "phase": "Phase",
        "kind": "kind",
        "options": "Options",
        "ordered": "an ordered scale",
        "range": "a number from {low} to {high}",
        "of": "refers to",
        "holds": "holding the view",
        "n": "answers",
        "columns": "Columns of responses.csv",
        "answer": "answered as",
        "in_columns": "its answers are in the columns {columns} of responses.csv",
        "published": "Published counts",
        "published_note": "These sessions are counts published elsewhere, not phones: their "
        "totals per option are in totals.csv, not rows of responses.csv.",
        "texts": "Open-text answers",
        "texts_note": "The answers the presenter or a moderator showed to the room are in "
        "text_answers.csv (session, participant, phase, slot, text); answers still pending or "
        "hidden are in no package.",
    },
    "zh-Hans": {
        "title": "编码手册",
        "files": "文件",
        "phase": "环节",
        "kind": "类型",
        "options": "选项",
        "ordered": "有序量表",
        "range": "{low} 到 {high} 之间的数字",
        "of": "对应",
        "holds": "持有该观点",
        "n": "回答数",
        "columns": "responses.csv 的列",
        "answer": "作答方式",
        "in_columns": "其回答见 responses.csv 的 {columns} 列",
        "published": "已发表的计数",
        "published_note": "以下场次是在别处发表的计数，而非手机作答：各选项的总数见 totals.csv，"
        "不是 responses.csv 的行。",
        "texts": "开放式回答",
        "texts_note": "演讲者或协管员向现场展示过的回答见 text_answers.csv（场次、参与者、环节、"
        "序号、文字）；仍待审核或已隐藏的回答不在任何数据包中。",
    },
}
RESPONSE_COLUMNS = {
    "session": {"en": "the session's join code", "zh-Hans": "场次的加入码"},
    "participant": {
        "en": "a random pseudonym of one phone, the same within one session only",
        "zh-Hans": "一部手机的随机代号，仅在同一场次内相同",
    },
    "phase": {"en": "the phase answered", "zh-Hans": "所回答的环节"},
    "choice": {"en": "the option chosen (empty for a number)", "zh-Hans": "所选选项（数字题为空）"},
    "value": {"en": "the number given (empty otherwise)", "zh-Hans": "填写的数字（其他为空）"},
    "language": {"en": "the session's language", "zh-Hans": "场次的语言"},
    "time": {
        "en": "when the phase opened, or when the answer was given if the presenter chose exact "
        "times (see datapackage.json)",
        "zh-Hans": "环节开启的时间；若演讲者选择了精确时间，则为作答时间（见 datapackage.json）",
    },
}


def _md(text: str) -> str:
    """Text safe in a Markdown line: no line breaks, markup characters escaped."""
    out = " ".join(str(text).split())
    for char in "\\`*_[]<>#|":
        out = out.replace(char, "\\" + char)
    return out


def codebook_md(g: Gathered) -> str:
    by_key = {p["id"]: p for p in g.phases}
    own = own_columns(g)
    published = [s for s in g.sessions if not s["linked"]]
    totals: dict[str, int] = {}
    for s in g.sessions:
        for k, n in s["n"].items():
            totals[k] = totals.get(k, 0) + n
    out: list[str] = []
    for lang in g.languages or ["en"]:
        words = CODEBOOK_WORDS.get(lang, CODEBOOK_WORDS["en"])
        out += [f"# {words['title']}: {_md(_label(g.titles, lang))}", ""]
        out += [f"## {words['columns']}", ""]
        for name, text in RESPONSE_COLUMNS.items():
            out.append(f"- `{name}`: {_md(_label(text, lang))}")
            if name == "value":  # the answer formats' own columns follow the answer's
                for column in own:
                    out.append(f"- `{column.name}`: {_md(_label(dict(column.description), lang))}")
        out.append("")
        if g.texts:
            out += [f"## {words['texts']}", "", words["texts_note"], ""]
        if published:
            out += [f"## {words['published']}", "", words["published_note"], ""]
            for s in published:
                where = f"{_md(s['venue'])}, {s['held_on']}"
                out.append(f"- `{s['code']}` ({where}): {_md(s['source'])}")
            out.append("")
        for phase in g.phases:
            out += [f"## {words['phase']} `{phase['id']}`", ""]
            out.append(f"{_md(_label(phase['question'], lang))}")
            out.append("")
            facts = [
                f"{words['kind']}: {phase['kind']}",
                f"{words['n']}: {totals.get(phase['id'], 0)}",
            ]
            if "answer" in phase:
                facts.insert(1, f"{words['answer']}: {phase['answer']}")
            if phase["of"]:
                facts.append(f"{words['of']}: `{phase['of']}`")
            if phase["range"]:
                low, high = phase["range"]
                facts.append(words["range"].format(low=_number(low), high=_number(high)))
            if _is_scale(phase, by_key):
                facts.append(words["ordered"])
            out += [f"- {fact}" for fact in facts]
            live = _live(phase["options"])
            if live:
                out += ["", f"{words['options']}:", ""]
                for i, option in enumerate(live, 1):
                    held = f" ({words['holds']})" if option["id"] in phase["holds"] else ""
                    label = _md(_label(option["label"], lang))
                    out.append(f"{i}. `{option['id']}`: {label}{held}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _xml_text(text: str) -> str:
    return export.NOT_XML.sub("", str(text))


def codebook_ddi(g: Gathered, options: PackageOptions) -> bytes:
    """The codebook as DDI-Codebook 2.5: the study, the responses file, one variable per phase
    with its question and categories in every language, and each category's frequency."""
    ET.register_namespace("", DDI_NAMESPACE)
    ns = "{" + DDI_NAMESPACE + "}"
    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    langs = g.languages or ["en"]

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, ns + tag, {k: v for k, v in attrs.items()})
        if text is not None:
            element.text = _xml_text(text)
        return element

    def texts(parent: ET.Element, tag: str, labels: dict[str, str]) -> None:
        for lang in langs:
            if lang in labels:
                sub(parent, tag, labels[lang], **{xml_lang: lang})

    own = own_columns(g)
    where = {"files": "F1"} if options.answers else {}
    root = ET.Element(ns + "codeBook", {"version": "2.5", xml_lang: langs[0]})
    doc = sub(sub(root, "docDscr"), "citation")
    texts(sub(doc, "titlStmt"), "titl", g.titles)
    study = sub(root, "stdyDscr")
    citation = sub(study, "citation")
    title_statement = sub(citation, "titlStmt")
    texts(title_statement, "titl", g.titles)
    sub(title_statement, "IDNo", f"beliefgap-{g.kind}-{g.name}".lower())
    responsibility = sub(citation, "rspStmt")
    for name in options.contributors:
        sub(responsibility, "AuthEnty", name)
    sub(sub(citation, "prodStmt"), "copyright", LICENCES[options.licence]["title"])
    sub(sub(citation, "verStmt"), "version", package_version(g))
    info = sub(study, "stdyInfo")
    summary = sub(info, "sumDscr")
    for s in g.sessions:
        sub(summary, "collDate", s["held_on"], date=s["held_on"], event="single")
    sub(summary, "anlyUnit", "individual")
    method = sub(sub(study, "method"), "dataColl")
    sub(method, "collMode", "live poll on the audience's phones during a talk")
    if options.answers:
        file_description = sub(root, "fileDscr", ID="F1", URI="data/responses.csv")
        file_text = sub(file_description, "fileTxt")
        sub(file_text, "fileName", "data/responses.csv")
        dimensions = sub(file_text, "dimensns")
        sub(dimensions, "caseQnty", str(len(g.responses)))
        sub(dimensions, "varQnty", str(len(RESPONSE_COLUMNS) + len(own)))
    if g.totals:  # published counts: every category's frequency counts them too
        file_description = sub(root, "fileDscr", ID="F2", URI="data/totals.csv")
        file_text = sub(file_description, "fileTxt")
        sub(file_text, "fileName", "data/totals.csv")
        dimensions = sub(file_text, "dimensns")
        sub(dimensions, "caseQnty", str(len(g.totals)))
        sub(dimensions, "varQnty", "5")
    data = sub(root, "dataDscr")
    by_key = {p["id"]: p for p in g.phases}
    frequencies: dict[tuple[str, str], int] = {}
    for row in g.responses:
        if row.choice is not None:
            key = (row.phase, row.choice)
            frequencies[key] = frequencies.get(key, 0) + 1
    for total in g.totals:
        if total.from_choice is None:
            key = (total.phase, total.choice)
            frequencies[key] = frequencies.get(key, 0) + total.n
    for cells in own_cells(g):  # a format's own columns count as (column, code)
        for name, code in cells.items():
            frequencies[(name, code)] = frequencies.get((name, code), 0) + 1
    for phase in g.phases:
        estimate = phase["range"] is not None
        nature = "interval" if estimate else "ordinal" if _is_scale(phase, by_key) else "nominal"
        var = sub(data, "var", ID=f"V_{phase['id']}", name=phase["id"], nature=nature, **where)
        texts(var, "labl", phase["question"])
        texts(sub(var, "qstn"), "qstnLit", phase["question"])
        if estimate:
            low, high = phase["range"]
            valid = sub(var, "valrng")
            sub(valid, "range", min=_number(low), max=_number(high))
        answer = formats.by_name(answer_of(phase))
        for option in _live(phase["options"]):
            category = sub(var, "catgry")
            sub(category, "catValu", option["id"])
            texts(category, "labl", option["label"])
            if not answer.own_results:  # else counted in the format's own columns, below
                sub(
                    category,
                    "catStat",
                    str(frequencies.get((phase["id"], option["id"]), 0)),
                    type="freq",
                )
        sub(var, "varFormat", type="numeric" if estimate else "character")
        names = [c.name for c in format_columns(answer.name, [phase], langs)]
        if names:
            for lang in langs:
                words = CODEBOOK_WORDS.get(lang, CODEBOOK_WORDS["en"])
                note = words["in_columns"].format(columns=", ".join(names))
                sub(var, "notes", note, **{xml_lang: lang})
    for column in own:
        var = sub(data, "var", ID=f"V_{column.name}", name=column.name, nature="nominal", **where)
        texts(var, "labl", dict(column.description))
        for code, labels in column.categories:
            category = sub(var, "catgry")
            sub(category, "catValu", code)
            texts(category, "labl", dict(labels))
            sub(category, "catStat", str(frequencies.get((column.name, code), 0)), type="freq")
        sub(var, "varFormat", type="character")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


# --------------------------------------------------------------------------- methods.md


def methods_md(g: Gathered, options: PackageOptions) -> str:
    times = (
        "the moment of each answer (its last change), to the second: the presenter chose exact "
        "times"
        if options.exact_times
        else "the moment the answer's phase opened: the time of each answer is coarsened to its "
        "phase, so that no row tells when one phone answered"
    )
    scope = (
        "one session"
        if g.kind == "session"
        else f"the {len(g.sessions)} sessions the talk's pooled results are built from "
        "(rehearsals are left out)"
    )
    lines = [
        "# Methods",
        "",
        f"- Software: beliefgap {software_version()}",
        f"- Package version: {package_version(g)} (data up to {export.iso_utc(g.updated)})",
        f"- Licence: {options.licence} ({LICENCES[options.licence]['title']})",
        f"- Holds: {scope}",
        "",
        "## How the answers were collected",
        "",
        "The presenter showed a QR code; people in the room joined on their phones and answered "
        "each phase while it was open. A phone may change its answer while the phase is open; "
        "the last answer is kept. One row of `responses.csv` is one phone's answer to one phase.",
        "",
        "## Privacy",
        "",
        "Nothing about a person is stored: a phone is known only by a random pseudonym that is "
        "the same within one session and unrelated across sessions; no address, no user agent. "
        f"The `time` column holds {times}.",
        "",
        "## Predictions",
        "",
        "Where the presenter locked a prediction before a session's first question opened, "
        "`predictions.json` holds it with its amendments: each entry's `canonical` text is what "
        "its `sha256` is computed from (an amendment's names the hash of the entry before it), "
        "and `checks` sets the latest claims against the session's figures in `results.json`.",
        "",
        *(
            []
            if options.answers
            else [
                "This package was published with a public results page: it holds no "
                "answer-level table (`responses.csv`), since from each phone's answers anyone "
                "could count the small cells the pages hide. The presenter holds the full "
                "package.",
                "",
            ]
        ),
        *(
            []
            if all(s["linked"] for s in g.sessions)
            else [
                "## Published counts",
                "",
                "Some sessions are counts published elsewhere (a show of hands, another tool, a "
                "paper: `source` in `sessions.csv` names it), not phones: nobody's answers are "
                "linked across phases, so they have no rows in `responses.csv`; their totals per "
                "option, and the cells of a revote that were published, are in `totals.csv`. "
                "They enter the pooled figures with the independent comparison.",
                "",
            ]
        ),
        "## The figures",
        "",
        "`results.json` holds the figures the app shows (the results JSON of its API); the "
        "methods behind them follow. Small cells of cross-tabulations are hidden there as on "
        "every page; `responses.csv` holds every answer.",
        "",
    ]
    body = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    return "\n".join(lines) + "\n" + body.replace("\n# ", "\n## ").lstrip()
