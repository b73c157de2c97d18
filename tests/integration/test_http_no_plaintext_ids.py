"""No plaintext ID number over HTTP (issue 12; docs/privacy.md, "Over HTTP").

The case-state worker, the materials worker, the sink and the counter app run as
processes on the test broker over scenario traffic, the worked example, a case that
puts ID numbers everywhere they can go (tests/privacy_support.py) and one record with a
bad ID number (dead-lettered). Once everything has caught up, every HTTP port is crawled
(tests/integration/crawl_support.py): the workers' web ports at every path Faust's web
server served before its views were turned off (stream_apps/faust_base.WEB_SETTINGS),
the sink's metrics port, and the counter app at every GET route of its OpenAPI document
plus its pages and static files, anonymously and signed in with every role, and its
POST routes that take an ID number or a query code. No answer holds an input ID number
in any spelling.
The workers serve only ``/metrics`` and ``/`` (``{"status": "OK"}``), every Faust view
answers 404, and they listen on the metrics host only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from counter.app import create_app
from onewindow.config import Settings
from onewindow.domain.receipt import query_code
from onewindow.kafka_local import free_port
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.crawl_support import (
    Answer,
    crawl,
    fill_path,
    listening_addresses,
    plaintext_in_answers,
)
from tests.integration.ops_support import start_worker_on
from tests.integration.streams import (
    ID_KEY,
    IDS,
    publish,
    shuffled_with_duplicates,
    stop,
    wait_stream_apps_caught_up,
    worker_env,
)
from tests.integration.test_no_plaintext_ids import BAD_RID
from tests.integration.test_read_model import _start_sink, _wait, _wait_sink_caught_up
from tests.privacy_support import RID_A, RID_B, USCC, event_needles, needles, privacy_events
from tests.read_model_support import read_jsonl
from tests.staff_support import bearer_for

pytestmark = pytest.mark.integration

CASE = "GZPRIV0001"
#: values for the counter's path and query parameters: the privacy case, its materials,
#: an ID number typed with separators (the answer must hold only its mask)
SAMPLES = {
    "case_id": CASE, "material_id": f"{CASE}-mat-3", "id_type": "RESIDENT_ID",
    "id_number": "110105-19491231-002x", "applicant_id_type": "RESIDENT_ID",
    "applicant_id_number": RID_B, "since_seconds": "86400", "date": "2025-09-29",
    "window_id": "W01",
}
TABLES = ("case-fold", "material-index")


#: The health pages of the workers and the sink (stream_apps/health.py, sinks/commands.py)
HEALTH = ("/healthz", "/readyz")


def faust_paths() -> list[str]:
    """Every path Faust's web server answered before its views were off (faust 0.15:
    the router, tables, graph, statistics, assignment and performance blueprints), with
    table names and keys of this test's data."""
    keys = [CASE, f"sha:{'3' * 64}", f"hold:RESIDENT_ID:{IDS.hash(RID_B)}:ID_CARD",
            f"doc:ID_CARD:{IDS.hash(RID_B)}", RID_A]
    out = ["/router/", "/router/topics", "/table/", "/graph/", "/assignment/",
           "/performance/", "/stats/", "/router", "/table"]
    for t in TABLES:
        out += [f"/table/{t}/", f"/router/{t}/"]
        out += [f"/table/{t}/{k}/" for k in keys] + [f"/router/{t}/{k}/" for k in keys]
    return out


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route, those of included routers too (FastAPI keeps an included router as
    one route holding the ``original_router``)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is None:
            yield r
        else:
            yield from _routes(inner.routes)


def counter_surface(tmp: Path) -> tuple[dict[str, Any], list[str]]:
    """The counter app's OpenAPI document and its GET paths outside it (pages, the
    documents, every static file), from the app `onewindow counter` serves, built here
    (its own database: building it creates the staff tables): the process serves the
    document to signed-in users only."""
    settings = Settings(database_url=f"sqlite:///{tmp / 'surface.db'}",
                        id_hash_key=SecretStr(ID_KEY))
    app = create_app(settings)
    extra = ["/", "/docs", "/redoc", "/healthz", "/metrics"]
    for r in _routes(app.routes):
        if isinstance(r, Mount) and isinstance(r.app, StaticFiles):
            files = sorted(Path(str(r.app.directory)).iterdir())
            extra += [f"{r.path}/{f.name}" for f in files if f.is_file()]
        elif "GET" in (getattr(r, "methods", None) or ()) \
                and not getattr(r, "include_in_schema", True):
            extra.append(fill_path(r.path, SAMPLES))
    return app.openapi(), list(dict.fromkeys(extra))


def crawl_counter(client: httpx.Client, base: str,
                  surface: tuple[dict[str, Any], list[str]]) -> list[Answer]:
    """Every answer of the counter app to ``client`` (anonymous, or signed in: give it
    the session cookie or the ``Authorization: Bearer`` header of a user)."""
    spec, extra = surface
    return crawl(client, base, samples=SAMPLES, extra_paths=extra, spec=spec)


@contextmanager
def _client(**headers: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, headers=headers) as c:
        yield c


def _start_counter(env: dict[str, str], tmp: Path, port: int) -> subprocess.Popen[bytes]:
    log = open(tmp / "counter.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "onewindow_cli", "counter", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)


def _post(client: httpx.Client, base: str, path: str, body: dict[str, Any]) -> Answer:
    r = client.post(base + path, json=body)
    return Answer(path, r.status_code, r.content, r.headers.get("content-type", ""))


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


def test_no_http_answer_of_any_process_holds_a_plaintext_id_number(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    topics = provisioned
    cases = list(ScenarioGenerator(ScenarioConfig(seed=67)).cases(30))
    cases += [read_jsonl(Path(__file__).parents[1] / "examples" / "restaurant-case.jsonl"),
              privacy_events(CASE)]
    flat = [e for c in cases for e in c]
    bad = dict(privacy_events("GZPRIV0009")[0],
               applicant={"kind": "PERSON", "id_type": "RESIDENT_ID", "id_number": BAD_RID,
                          "name": "测试"})
    numbers = needles() | event_needles(flat) | {BAD_RID}
    publish(kafka, topics, [*shuffled_with_duplicates(cases, seed=5), bad])

    db_url = f"sqlite:///{tmp_path / 'model.db'}"
    env = dict(worker_env(kafka, topics, tmp_path), ONEWINDOW_DATABASE_URL=db_url)
    host = Settings().metrics_host
    ports = {"w1": free_port(), "m1": free_port(), "sink": free_port(),
             "counter": free_port()}
    worker = start_worker_on(kafka, topics, tmp_path, ports["w1"], name="w1")
    materials = start_worker_on(kafka, topics, tmp_path, ports["m1"], name="m1",
                                command="materials-worker")
    sink = _start_sink(env, tmp_path, ports["sink"])
    counter = _start_counter(env, tmp_path, ports["counter"])
    procs = (worker, materials, sink, counter)
    engine = make_engine(db_url)
    answers: dict[str, list[Answer]] = {}
    surface = counter_surface(tmp_path)
    try:
        wait_stream_apps_caught_up(kafka, topics, procs, timeout=120)
        _wait_sink_caught_up(kafka, topics, engine, procs=procs)
        _wait(lambda: _answers(f"http://127.0.0.1:{ports['counter']}/healthz"),
              "the counter app", procs=procs)
        with _client() as anonymous:
            for name in ("w1", "m1"):
                answers[name] = crawl(anonymous, f"http://{host}:{ports[name]}",
                                      extra_paths=["/", "/metrics", *HEALTH, *faust_paths()])
            answers["sink"] = crawl(anonymous, f"http://127.0.0.1:{ports['sink']}",
                                    extra_paths=["/", "/metrics", *HEALTH, *faust_paths()])
            counter_base = f"http://127.0.0.1:{ports['counter']}"
            answers["counter"] = crawl_counter(anonymous, counter_base, surface)
        # signed in with every role: every route answers with its data
        staff = bearer_for(db_url, "clerk", "supervisor", "auditor", "ops", name="crawler")
        with _client(**staff) as everyone:
            answers["counter, signed in"] = crawl_counter(everyone, counter_base, surface)
            answers["counter, posts"] = [
                _post(everyone, counter_base, path, body) for path, body in (
                    ("/api/search", {"q": RID_B}),
                    ("/api/search", {"q": CASE}),
                    ("/api/holders/materials", {"id_type": "RESIDENT_ID", "id_number": RID_B}),
                    ("/api/holders/materials", {"id_type": "USCC", "id_number": USCC}),
                    ("/api/access-log/query", {"holder": {"id_type": "RESIDENT_ID",
                                                          "id_number": RID_B}}),
                    ("/api/lookup", {"case_id": CASE,
                                     "query_code": query_code(IDS.digest, CASE)}))]
        listening = {name: listening_addresses(p.pid)
                     for name, p in (("w1", worker), ("m1", materials))}
    finally:
        engine.dispose()
        for p in procs:
            stop(p)
    for p, name in ((worker, "w1"), (materials, "m1"), (sink, "sink")):
        assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]

    # ---- the workers: /metrics, the health pages and the production index, no Faust
    # view, metrics host only
    for name in ("w1", "m1"):
        status = {a.path: a.status for a in answers[name]}
        body = {a.path: a.body for a in answers[name]}
        assert status["/metrics"] == 200 and b"onewindow_" in body["/metrics"], name
        assert status["/"] == 200 and json.loads(body["/"]) == {"status": "OK"}, name
        for path in HEALTH:  # a verdict, no data; 200 or 503 depending on the moment
            assert set(json.loads(body[path])) <= {"status", "reason", "detail"}, name
        served = {p: s for p, s in status.items()
                  if p not in ("/", "/metrics", *HEALTH, "/openapi.json") and s != 404}
        assert status["/openapi.json"] == 404, name
        assert served == {}, (name, served)
        assert listening[name], name
        assert {addr for addr, _port in listening[name]} == {host}, (name, listening[name])
        assert (host, ports[name]) in listening[name], (name, listening[name])

    # ---- the sink's metrics port answers its health at /healthz and /readyz, metrics at
    # every other path
    sink_pages = [a for a in answers["sink"] if a.path not in HEALTH]
    assert {a.status for a in sink_pages} == {200}
    assert all(b"onewindow_sink" in a.body for a in sink_pages)
    assert {a.path for a in answers["sink"]} >= set(HEALTH)
    assert all(set(json.loads(a.body)) <= {"status", "reason", "detail"}
               for a in answers["sink"] if a.path in HEALTH)

    # ---- the counter: every GET route of its OpenAPI document was fetched
    gets = [p for p, item in surface[0]["paths"].items() if "get" in item]
    assert len(gets) >= 8 and len(answers["counter"]) > len(gets) + len(surface[1])

    # ---- signed in, the crawl reached the data: every GET route and every POST answered
    signed = {a.path: a.status for a in answers["counter, signed in"]}
    refused = {p: st for p, st in signed.items() if st >= 400}
    # no ReDoc; OpenID Connect is not configured in this run
    assert refused == {"/redoc": 404, "/auth/oidc/login": 404, "/auth/oidc/callback": 404}
    posts = answers["counter, posts"]
    assert [a.status for a in posts] == [200] * len(posts), [(a.path, a.status) for a in posts]
    assert json.loads(posts[2].body)["total_documents"] > 0  # RID_B's documents, masked
    assert json.loads(posts[5].body)["case_id"] == CASE  # the citizen's view

    # ---- and no answer holds an input ID number, in any spelling
    everything = [a for name in answers for a in answers[name]]
    assert plaintext_in_answers(everything, numbers) == []
    # the search is not blind: a body echoing the numbers as typed is caught
    echo = Answer("/echo", 200, json.dumps({"typed": "110105\u20131949 1231\u2013002x",
                                            "usccs": ["９１４４０１０１ＭＡ５ＣＸＹＷ１２３"]}).encode(),
                  "application/json")
    assert {n for _p, _s, n in plaintext_in_answers([echo], numbers)} >= {RID_B, USCC}
