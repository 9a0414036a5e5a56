"""Arguments that exist for display or notification: read, checked, kept, or refused aloud.

`doc_md` ending in `.md` names a Markdown file to read (as in Airflow), looked up beside the DAG
file first, then from the working directory; a name that is not found stays the text itself.
`owner_links` must map owners to http(s) or mailto links. asyncflow sends no e-mail: a task that
Airflow would mail about (`email` set with `email_on_failure` or `email_on_retry`, both true by
default as in Airflow) gets an `EmailNotSentWarning` naming the arguments, never silence.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from urllib.parse import urlparse

from asyncflow.exceptions import DagDefinitionError


class EmailNotSentWarning(UserWarning):
    """An e-mail argument asyncflow accepts but does not act on."""


def read_doc_md(doc_md: str | None, fileloc: str | None) -> str | None:
    """The Markdown text of `doc_md`: a `.md` file's content when it names one."""
    if doc_md is None or not doc_md.strip().endswith(".md"):
        return doc_md
    path = doc_md.strip()
    candidates = [path]
    if fileloc and not os.path.isabs(path):
        candidates.insert(0, os.path.join(os.path.dirname(fileloc), path))
    for candidate in candidates:
        try:
            with open(candidate, encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError):
            continue
    return doc_md


def check_owner_links(
    owner_links: Mapping[str, str] | None, *, dag_id: str, fileloc: str | None
) -> dict[str, str]:
    """Airflow's rule: each owner's link is an http(s) URL with a host, or a mailto: link."""
    links = dict(owner_links or {})
    for owner, link in links.items():
        parsed = urlparse(str(link))
        if not (
            parsed.scheme == "mailto" or (parsed.scheme in ("http", "https") and parsed.netloc)
        ):
            raise DagDefinitionError(
                f"owner_links[{owner!r}] = {link!r} is not a valid link: use an http(s) URL "
                "or mailto:address",
                dag_id=dag_id,
                fileloc=fileloc,
            )
    return links


def warn_unsent_email(
    email: str | Iterable[str] | None,
    *,
    email_on_failure: bool,
    email_on_retry: bool,
    dag_id: str | None,
    fileloc: str | None,
    task_id: str,
) -> None:
    """Warn, naming the arguments, when Airflow would send mail for this task."""
    if not email:
        return
    flags = [
        name
        for name, value in (
            ("email_on_failure", email_on_failure),
            ("email_on_retry", email_on_retry),
        )
        if value
    ]
    if not flags:
        return
    where = f"DAG {dag_id!r}, task {task_id!r}" if dag_id else f"task {task_id!r}"
    if fileloc:
        where += f" ({fileloc})"
    warnings.warn(
        f"{where}: email={email!r} with {' and '.join(f'{f}=True' for f in flags)} sends no "
        "mail by itself in asyncflow: send it with on_failure_callback=[EmailNotifier(to=...)] "
        "(asyncflow.notifications; SMTP settings from ASYNCFLOW_SMTP_*), or set "
        f"{' and '.join(f'{f}=False' for f in flags)} to silence this warning",
        EmailNotSentWarning,
        stacklevel=4,
    )
