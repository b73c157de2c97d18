"""Realistic department traffic: 一件事 bundles handled at a Guangzhou service centre.

A seeded generator of whole cases (acceptance at the counter, each department's
progress with 补正 cycles, occasional 特别程序, rejections and withdrawals, materials
with resubmitted documents, certificates issued at the end). It feeds the simulator,
the integration tests and the benchmarks, so all three see the same kind of data.
Everything it emits is valid unless asked for invalid events.

`ScenarioGenerator.opening` is the simulator's scripted start: four cases that show,
within `OPENING_SPAN` of (open) time, everything the counter and the supervisor view are
about (acceptance, review, 补正 asked and answered, approvals, a refusal, avoidable
submissions, a conflict); docs/operations.md, "The demo".
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from onewindow.domain.identifiers import resident_id_check_char, uscc_check_char
from producers.service_hours import OpenTime

_SURNAMES = "陈李黄张梁林刘吴麦罗何郑谢杨冯邓曾彭蔡许"
_GIVEN = ["静", "伟", "敏", "强", "丽", "军", "婷", "浩", "欣怡", "志明", "嘉怡", "子轩", "晓峰",
          "雅婷", "建华", "俊杰", "文华", "家豪", "思敏", "国栋"]
_DISTRICTS = ["440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114"]
_TRADES = ["餐饮管理", "科技", "贸易", "文化传媒", "物业管理", "建筑工程", "教育咨询", "医疗器械"]


@dataclass(frozen=True)
class Task:
    department: str
    suffix: str
    name: str


@dataclass(frozen=True)
class Bundle:
    """One 一件事 service: what the counter accepts and who must decide."""

    code: str
    name: str
    kind: str
    promise: tuple[int, str]
    tasks: tuple[Task, ...]
    #: (material_type, display name, whose, department index or -1 for the counter)
    materials: tuple[tuple[str, str, str, int], ...]
    #: (task index, certificate type) issued when that task is approved
    certificates: tuple[tuple[int, str], ...] = ()
    applicant: str = "company"  # or "person"


BUNDLES: tuple[Bundle, ...] = (
    Bundle("11440100MB2C92018X4440117001001", "企业开办一件事", "JOINT", (3, "WORKING_DAY"),
           (Task("scjgj", "DJ", "设立登记"), Task("gaj", "KZ", "印章刻制备案"),
            Task("swj", "FP", "发票申领"), Task("rsj", "SB", "社保登记"),
            Task("gjj", "GJJ", "公积金缴存登记")),
           (("ID_CARD", "法定代表人身份证", "person", 0), ("ID_CARD", "法定代表人身份证", "person", 1),
            ("LEASE_CONTRACT", "住所租赁合同", "company", 0), ("ID_CARD", "经办人身份证", "person", 2),
            ("ARTICLES", "公司章程", "company", 0)),
           ((0, "BUSINESS_LICENSE"),)),
    Bundle("11440100MB2C92018X4440117002011", "开办餐饮店", "JOINT", (5, "WORKING_DAY"),
           (Task("scjgj", "SCJG", "食品经营许可"), Task("zjj", "XF", "消防安全检查")),
           (("ID_CARD", "法定代表人身份证", "person", 0), ("ID_CARD", "法定代表人身份证", "person", 1),
            ("BUSINESS_LICENSE", "营业执照", "company", 0),
            ("FLOOR_PLAN", "经营场所平面图", "company", 0)),
           ((0, "FOOD_BUSINESS_LICENSE"),)),
    Bundle("11440100MB2C92018X4440117003001", "新生儿出生一件事", "JOINT", (5, "WORKING_DAY"),
           (Task("wjw", "CSZ", "出生医学证明"), Task("gaj", "HJ", "户口登记"),
            Task("ybj", "YB", "医保参保登记"), Task("rsj", "SBK", "社会保障卡申领")),
           (("ID_CARD", "父亲身份证", "person", 0), ("ID_CARD", "父亲身份证", "person", 1),
            ("MARRIAGE_CERT", "结婚证", "person", 1), ("HOUSEHOLD_REGISTER", "户口簿", "person", 1),
            ("ID_CARD", "父亲身份证", "person", 2)),
           ((0, "BIRTH_CERT"),), applicant="person"),
    Bundle("11440100MB2C92018X4440117004001", "二手房转移登记", "JOINT", (5, "WORKING_DAY"),
           (Task("zjj", "BA", "存量房合同网签备案"), Task("swj", "QS", "契税缴纳"),
            Task("bdcdj", "ZY", "不动产转移登记")),
           (("ID_CARD", "买方身份证", "person", 0), ("ID_CARD", "买方身份证", "person", 2),
            ("PROPERTY_CERT", "不动产权证书", "person", 2), ("CONTRACT", "存量房买卖合同", "person", 0),
            ("MARRIAGE_CERT", "婚姻状况证明", "person", 1)),
           ((2, "PROPERTY_CERT"),), applicant="person"),
    Bundle("11440100MB2C92018X4440117005001", "个人社保转移", "PROMISED", (15, "NATURAL_DAY"),
           (Task("rsj", "ZY", "养老保险关系转移"),),
           (("ID_CARD", "申请人身份证", "person", 0), ("HOUSEHOLD_REGISTER", "户口簿", "person", 0)),
           applicant="person"),
    Bundle("11440100MB2C92018X4440117006001", "婚姻登记证明补发", "IMMEDIATE", (4, "HOUR"),
           (Task("mzj", "HY", "婚姻登记档案查询"),),
           (("ID_CARD", "申请人身份证", "person", 0),), ((0, "MARRIAGE_CERT"),),
           applicant="person"),
)


@dataclass
class Person:
    id_number: str
    name: str
    #: a stable scan of the ID card, re-used on some resubmissions (EXACT links)
    scan_sha: str


@dataclass
class Company:
    uscc: str
    name: str
    capital: str
    legal_rep: Person


@dataclass
class Population:
    rng: random.Random
    persons: list[Person] = field(default_factory=list)
    companies: list[Company] = field(default_factory=list)

    def person(self) -> Person:
        # Returning citizens are common at a counter: reuse someone 60% of the time.
        if self.persons and self.rng.random() < 0.6:
            return self.rng.choice(self.persons)
        return self.new_person()

    def new_person(self) -> Person:
        r = self.rng
        birth = datetime(1960, 1, 1) + timedelta(days=r.randrange(0, 45 * 365))
        first17 = f"{r.choice(_DISTRICTS)}{birth:%Y%m%d}{r.randrange(0, 1000):03d}"
        p = Person(first17 + resident_id_check_char(first17),
                   r.choice(_SURNAMES) + r.choice(_GIVEN), _sha(r))
        self.persons.append(p)
        return p

    def company(self) -> Company:
        if self.companies and self.rng.random() < 0.5:
            return self.rng.choice(self.companies)
        return self.new_company()

    def new_company(self) -> Company:
        r = self.rng
        body = "".join(r.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
        first17 = f"9144{r.choice(['0101', '0103', '0104', '0106'])}{body}"
        c = Company(first17 + uscc_check_char(first17),
                    f"广州{r.choice(['花城', '越秀', '珠江', '南沙', '天河'])}{r.choice(_TRADES)}有限公司",
                    f"{r.choice([10, 50, 100, 200, 500])}万元", self.person())
        self.companies.append(c)
        return c


def _sha(r: random.Random) -> str:
    return hashlib.sha256(r.randbytes(16)).hexdigest()


def _typed(number: str, r: random.Random) -> str:
    """How a desk clerk types a number: plain, with spaces, with dashes, or full-width."""
    roll = r.random()
    if roll < 0.7:
        return number
    if roll < 0.8:
        return f"{number[:6]} {number[6:14]} {number[14:]}"
    if roll < 0.9:
        return f"{number[:6]}-{number[6:]}"
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in number)


@dataclass
class ScenarioConfig:
    seed: int = 7
    start: datetime = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 in Guangzhou
    #: minutes between two acceptances at the centre (all windows together)
    spacing_minutes: float = 3.0
    supplement_rate: float = 0.2
    suspend_rate: float = 0.04
    reject_rate: float = 0.05
    withdraw_rate: float = 0.03
    conflict_rate: float = 0.02
    number_missing_rate: float = 0.1
    #: an id namespace: when set, every case id (and so every event, task, material and
    #: certificate id) carries it, and it is mixed into the seed, so two runs with
    #: different `run` share no id (the simulator gives each run its own)
    run: str = ""
    #: the centre's opening hours (`producers.service_hours`): when set, acceptances are
    #: `spacing_minutes` of open time apart, and every delay of a case is open time: a
    #: delay drawn as h hours is h x `open_share` open hours (30 h: 8.75 open hours, a
    #: working day and a quarter), so nothing happens while the centre is closed. None:
    #: clock time, as the fixtures and benchmarks have always had it.
    hours: OpenTime | None = None


class ScenarioGenerator:
    """Seeded: the same config gives the same events, byte for byte."""

    def __init__(self, config: ScenarioConfig | None = None) -> None:
        self.config = config or ScenarioConfig()
        cfg = self.config
        self.rng = random.Random(f"{cfg.seed}/{cfg.run}" if cfg.run else cfg.seed)
        self.population = Population(self.rng)
        self._n = 0

    def _at(self, start: datetime, minutes: float) -> datetime:
        """``minutes`` after ``start``: open minutes with `hours`, else clock minutes."""
        hours = self.config.hours
        if hours is None:
            return start + timedelta(minutes=minutes)
        return hours.add(start, minutes * 60)

    def _later(self, at: datetime, hours_drawn: float) -> datetime:
        """A delay drawn as ``hours_drawn`` hours after ``at`` (see `ScenarioConfig.hours`)."""
        hours = self.config.hours
        if hours is None:
            return at + timedelta(hours=hours_drawn)
        return hours.add(at, hours_drawn * 3600 * hours.open_share)

    def cases(self, count: int) -> Iterator[list[dict[str, Any]]]:
        """`count` cases, each a list of its events in occurred_at order."""
        for _ in range(count):
            yield self.case()

    def case(self) -> list[dict[str, Any]]:
        cfg, r = self.config, self.rng
        self._n += 1
        n = self._n
        bundle = r.choice(BUNDLES)
        accepted = self._at(cfg.start, cfg.spacing_minutes * n)
        case_id = f"GZ{accepted:%Y%m%d}{cfg.run}{n:06d}"
        events: list[dict[str, Any]] = []
        seq = iter(range(1, 10_000))

        def ev(etype: str, dept: str, at: datetime, **fields: Any) -> dict[str, Any]:
            e = {"type": etype, "event_id": f"{case_id}-E{next(seq):03d}", "case_id": case_id,
                 "department": dept, "occurred_at": at}
            e.update(fields)
            events.append(e)
            return e

        person = self.population.person()
        company = self.population.company() if bundle.applicant == "company" else None
        if company is not None:
            person = company.legal_rep
            applicant = {"kind": "ORGANIZATION", "id_type": "USCC", "id_number": company.uscc,
                         "name": company.name}
        else:
            applicant = {"kind": "PERSON", "id_type": "RESIDENT_ID",
                         "id_number": person.id_number, "name": person.name}
        tasks = [{"task_id": f"{case_id}-{t.suffix}", "department": t.department,
                  "name": t.name} for t in bundle.tasks]
        ev("CaseAccepted", "zwfw", accepted, service_code=bundle.code,
           service_name=bundle.name, case_kind=bundle.kind,
           channel=r.choices(["COUNTER", "ONLINE", "KIOSK", "MOBILE"], [6, 3, 1, 2])[0],
           window_id=f"W{r.randrange(1, 13):02d}", applicant=applicant,
           promise={"amount": bundle.promise[0], "unit": bundle.promise[1]}, tasks=tasks)
        for i, (mtype, mname, whose, dept_ix) in enumerate(bundle.materials):
            dept = "zwfw" if dept_ix < 0 else bundle.tasks[dept_ix].department
            at = self._at(accepted, 2 + i)
            ev("MaterialSubmitted", dept, at, **self._material(
                case_id, i, mtype, mname, person if whose == "person" or company is None
                else company, tasks[max(dept_ix, 0)]["task_id"]))
        withdrawn = r.random() < cfg.withdraw_rate
        last = accepted
        for ti, task in enumerate(tasks):
            t = self._later(accepted, r.uniform(1, 5))
            steps = ["RECEIVED", "IN_REVIEW"]
            if r.random() < cfg.supplement_rate:
                steps += ["SUPPLEMENT_REQUESTED", "SUPPLEMENT_RECEIVED", "IN_REVIEW"]
            if r.random() < cfg.suspend_rate:
                steps += ["SUSPENDED", "RESUMED"]
            if withdrawn and ti == 0:
                steps = steps[:2]
            elif not withdrawn:
                steps.append("REJECTED" if r.random() < cfg.reject_rate else "APPROVED")
            for status in steps:
                extra: dict[str, Any] = {"task_id": task["task_id"], "status": status,
                                         "officer": None, "note": None}
                if status == "SUPPLEMENT_REQUESTED":
                    extra["note"] = "请补充材料"
                if status in ("APPROVED", "REJECTED"):
                    extra["officer"] = r.choice(_SURNAMES) + r.choice(_GIVEN)
                ev("TaskUpdated", task["department"], t, **extra)
                last = max(last, t)
                t = self._later(t, r.uniform(0.5, 30))
            if steps[-1] == "APPROVED":
                for cert_task, ctype in bundle.certificates:
                    if cert_task == ti:
                        holder = _holder(company or person)
                        number = f"{ctype[:2]}{r.randrange(10**13, 10**14)}"
                        if ctype == "BUSINESS_LICENSE" and company is not None:
                            # 营业执照's number is the company's USCC: a later paper copy
                            # of this licence is the same document (and avoidable).
                            number = company.uscc
                        ev("CertificateIssued", task["department"], t, task_id=task["task_id"],
                           certificate_id=f"cert-{case_id}-{ti}", certificate_type=ctype,
                           document_number=number, holder=holder, sha256=_sha(r),
                           declared_fields={"name": holder["name"]}, valid_until=None)
        if withdrawn:
            ev("CaseWithdrawn", "zwfw", self._later(last, 2), reason="申请人主动撤回")
        return events

    def opening(self) -> list[list[dict[str, Any]]]:
        """The scripted opening, four cases, each a list of its events in occurred_at
        order, all within `OPENING_SPAN` after `ScenarioConfig.start` (open time with
        `hours`); they take the next four case numbers. A new company and a new citizen:

        1. 企业开办一件事 for the company, at minute 1: its legal representative's ID card
           handed to two departments (the second copy is avoidable: SAME_DOCUMENT), each
           department receives, reviews and approves; the 营业执照 is issued (minute 61).
        2. 个人社保转移 for the citizen, at 15: received, in review, refused (minute 95).
        3. 开办餐饮店 for the same company, at 70: the ID card again and a paper copy of
           the 营业执照 issued an hour before (both avoidable: already on file); 市场监管
           asks for a 补正 (110), the corrected floor plan comes (140), both departments
           approve (170, 195).
        4. 婚姻登记证明补发 for the citizen, at 120: an ID card with the number of case 2's
           and another name (a CONFLICT: the same certificate told two ways); approved.

        Valid events only; the delays are fixed, the documents' contents seeded."""
        company = self.population.new_company()
        rep = company.legal_rep
        citizen = self.population.new_person()
        return [self._opening_startup(company), self._opening_refusal(citizen),
                self._opening_restaurant(company, rep), self._opening_conflict(citizen)]

    def _scripted(self, bundle: Bundle, accepted_minute: float, window: str,
                  applicant: Person | Company) -> _Script:
        cfg = self.config
        self._n += 1
        accepted = self._at(cfg.start, accepted_minute)
        case_id = f"GZ{accepted:%Y%m%d}{cfg.run}{self._n:06d}"
        sc = _Script(case_id, lambda m: self._at(cfg.start, m))
        tasks = [{"task_id": f"{case_id}-{t.suffix}", "department": t.department,
                  "name": t.name} for t in bundle.tasks]
        sc.tasks = [t["task_id"] for t in tasks]
        sc.ev("CaseAccepted", "zwfw", accepted_minute, service_code=bundle.code,
              service_name=bundle.name, case_kind=bundle.kind, channel="COUNTER",
              window_id=window, applicant=_applicant(applicant),
              promise={"amount": bundle.promise[0], "unit": bundle.promise[1]}, tasks=tasks)
        return sc

    def _doc(self, sc: _Script, minute: float, dept: str, task: int, mtype: str, mname: str,
             who: Person | Company, *, number: str | None,
             fields: dict[str, str] | None = None) -> None:
        """A MaterialSubmitted of the opening: its number typed plainly, a fresh scan."""
        r = self.rng
        sc.materials += 1
        if fields is None:
            fields = {"name": who.name}
            if isinstance(who, Person) and mtype == "ID_CARD":
                fields["id_number"] = who.id_number[-4:]
        sc.ev("MaterialSubmitted", dept, minute, material_id=f"{sc.case_id}-M{sc.materials:02d}",
              material_type=mtype, name=mname, holder=_holder(who), document_number=number,
              sha256=_sha(r), pages=r.choice([1, 2]), size_bytes=r.randrange(80_000, 900_000),
              form="ORIGINAL" if mtype == "ID_CARD" else "COPY", declared_fields=fields,
              task_id=sc.tasks[task])

    def _steps(self, sc: _Script, task: int, dept: str,
               steps: list[tuple[float, str, str | None]]) -> None:
        """TaskUpdated events of one task: (minute, status, note)."""
        for minute, status, note in steps:
            officer = None
            if status in ("APPROVED", "REJECTED"):
                officer = self.rng.choice(_SURNAMES) + self.rng.choice(_GIVEN)
            sc.ev("TaskUpdated", dept, minute, task_id=sc.tasks[task], status=status,
                  officer=officer, note=note)

    def _certificate(self, sc: _Script, minute: float, dept: str, task: int, ctype: str,
                     who: Person | Company, number: str) -> None:
        holder = _holder(who)
        sc.ev("CertificateIssued", dept, minute, task_id=sc.tasks[task],
              certificate_id=f"cert-{sc.case_id}-{task}", certificate_type=ctype,
              document_number=number, holder=holder, sha256=_sha(self.rng),
              declared_fields={"name": holder["name"]}, valid_until=None)

    def _opening_startup(self, company: Company) -> list[dict[str, Any]]:
        bundle = _bundle("企业开办一件事")
        rep = company.legal_rep
        sc = self._scripted(bundle, 1, "W01", company)
        self._doc(sc, 2, "scjgj", 0, "ID_CARD", "法定代表人身份证", rep, number=rep.id_number)
        self._doc(sc, 3, "gaj", 1, "ID_CARD", "法定代表人身份证", rep, number=rep.id_number)
        self._doc(sc, 4, "scjgj", 0, "LEASE_CONTRACT", "住所租赁合同", company, number=None)
        self._doc(sc, 5, "scjgj", 0, "ARTICLES", "公司章程", company, number=None)
        for i, task in enumerate(bundle.tasks):
            self._steps(sc, i, task.department, [(10 + 2 * i, "RECEIVED", None),
                                                 (30 + 4 * i, "IN_REVIEW", None),
                                                 (60 + 8 * i, "APPROVED", None)])
            if i == 0:
                self._certificate(sc, 61, task.department, 0, "BUSINESS_LICENSE", company,
                                  company.uscc)
        return sc.sorted()

    def _opening_refusal(self, citizen: Person) -> list[dict[str, Any]]:
        bundle = _bundle("个人社保转移")
        sc = self._scripted(bundle, 15, "W02", citizen)
        self._doc(sc, 17, "rsj", 0, "ID_CARD", "申请人身份证", citizen, number=citizen.id_number)
        self._doc(sc, 18, "rsj", 0, "HOUSEHOLD_REGISTER", "户口簿", citizen, number=None)
        self._steps(sc, 0, "rsj", [(25, "RECEIVED", None), (40, "IN_REVIEW", None),
                                   (95, "REJECTED", "转出地参保缴费记录不符合转移条件")])
        return sc.sorted()

    def _opening_restaurant(self, company: Company, rep: Person) -> list[dict[str, Any]]:
        bundle = _bundle("开办餐饮店")
        sc = self._scripted(bundle, 70, "W01", company)
        self._doc(sc, 72, "scjgj", 0, "ID_CARD", "法定代表人身份证", rep, number=rep.id_number)
        self._doc(sc, 73, "zjj", 1, "ID_CARD", "法定代表人身份证", rep, number=rep.id_number)
        self._doc(sc, 74, "scjgj", 0, "BUSINESS_LICENSE", "营业执照", company,
                  number=company.uscc)
        self._doc(sc, 75, "scjgj", 0, "FLOOR_PLAN", "经营场所平面图", company, number=None)
        self._steps(sc, 0, "scjgj", [(80, "RECEIVED", None), (90, "IN_REVIEW", None),
                                     (110, "SUPPLEMENT_REQUESTED", "经营场所平面图未标注面积，请补正"),
                                     (141, "SUPPLEMENT_RECEIVED", None),
                                     (150, "IN_REVIEW", None), (195, "APPROVED", None)])
        self._doc(sc, 140, "scjgj", 0, "FLOOR_PLAN", "经营场所平面图（补正）", company, number=None,
                  fields={"name": company.name, "area": "86平方米"})
        self._certificate(sc, 196, "scjgj", 0, "FOOD_BUSINESS_LICENSE", company,
                          f"JY{self.rng.randrange(10**13, 10**14)}")
        self._steps(sc, 1, "zjj", [(82, "RECEIVED", None), (100, "IN_REVIEW", None),
                                   (170, "APPROVED", None)])
        return sc.sorted()

    def _opening_conflict(self, citizen: Person) -> list[dict[str, Any]]:
        bundle = _bundle("婚姻登记证明补发")
        sc = self._scripted(bundle, 120, "W03", citizen)
        self._doc(sc, 122, "mzj", 0, "ID_CARD", "申请人身份证", citizen, number=citizen.id_number,
                  fields={"name": citizen.name + "（曾用名）", "id_number": citizen.id_number[-4:]})
        self._steps(sc, 0, "mzj", [(125, "RECEIVED", None), (130, "IN_REVIEW", None),
                                   (150, "APPROVED", None)])
        self._certificate(sc, 151, "mzj", 0, "MARRIAGE_CERT", citizen,
                          f"MA{self.rng.randrange(10**13, 10**14)}")
        return sc.sorted()

    def _material(self, case_id: str, i: int, mtype: str, mname: str,
                  who: Person | Company, task_id: str) -> dict[str, Any]:
        r, cfg = self.rng, self.config
        if isinstance(who, Person):
            holder = _holder(who)
            number = who.id_number if mtype == "ID_CARD" else \
                f"{mtype[:3]}{int(hashlib.sha1(who.id_number.encode()).hexdigest()[:10], 16)}"  # noqa: S324
            fields = {"name": who.name, "id_number": who.id_number[-4:]}
            sha = who.scan_sha if mtype == "ID_CARD" and r.random() < 0.3 else _sha(r)
        else:
            holder = _holder(who)
            number = who.uscc if mtype == "BUSINESS_LICENSE" else None
            fields = {"name": who.name, "registered_capital": who.capital}
            sha = _sha(r)
        if number is not None and r.random() < cfg.conflict_rate:
            fields = dict(fields, name=fields["name"] + "（变更前）")
        typed = None if number is None or r.random() < cfg.number_missing_rate else \
            _typed(number, r)
        return {"material_id": f"{case_id}-M{i + 1:02d}", "material_type": mtype, "name": mname,
                "holder": holder, "document_number": typed, "sha256": sha,
                "pages": r.choice([1, 1, 2, 4]), "size_bytes": r.randrange(80_000, 2_500_000),
                "form": r.choice(["COPY", "COPY", "ORIGINAL", "ELECTRONIC"]),
                "declared_fields": fields, "task_id": task_id}


#: how long the opening (`ScenarioGenerator.opening`) lasts from its start: its last event
#: is at 196 minutes (open minutes when the generator follows opening hours)
OPENING_SPAN = timedelta(minutes=200)


def _bundle(name: str) -> Bundle:
    return next(b for b in BUNDLES if b.name == name)


def _applicant(who: Person | Company) -> dict[str, str]:
    if isinstance(who, Company):
        return {"kind": "ORGANIZATION", "id_type": "USCC", "id_number": who.uscc,
                "name": who.name}
    return {"kind": "PERSON", "id_type": "RESIDENT_ID", "id_number": who.id_number,
            "name": who.name}


class _Script:
    """The events of one scripted case, timed in minutes from the opening's start."""

    def __init__(self, case_id: str, at: Callable[[float], datetime]) -> None:
        self.case_id = case_id
        self.at = at
        self.events: list[dict[str, Any]] = []
        self.tasks: list[str] = []
        self.materials = 0

    def ev(self, etype: str, dept: str, minute: float, **fields: Any) -> None:
        self.events.append({"type": etype, "event_id": f"{self.case_id}-E{len(self.events) + 1:03d}",
                            "case_id": self.case_id, "department": dept,
                            "occurred_at": self.at(minute), **fields})

    def sorted(self) -> list[dict[str, Any]]:
        return sorted(self.events, key=lambda e: e["occurred_at"])


def _holder(who: Person | Company) -> dict[str, str]:
    if isinstance(who, Person):
        return {"id_type": "RESIDENT_ID", "id_number": who.id_number, "name": who.name}
    return {"id_type": "USCC", "id_number": who.uscc, "name": who.name}
