"""Materials on file: one material with its links, and a holder's documents (duplicates
folded together, the submissions that could have been avoided marked; newest first, each
with its latest submissions and first conflicts listed and the totals stated:
``counter.present.DOCUMENT_SUBMISSIONS``, docs/read-model.md). The ID number of
a holder is hashed with the sink's key before it reaches SQL; ``POST`` keeps it out of
URLs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import Connection

from counter import present
from counter.auth import Auditor, AuditTrail, require
from counter.dependencies import ERRORS, Conn, Limit, Offset, Protector, SearchLimits
from counter.limits import spend_search
from counter.schemas import HolderDocuments, HolderQuery, IdType, MaterialWithLinks
from onewindow.domain.access import Permission, Principal
from onewindow.domain.identifiers import mask_id
from onewindow.read_model import queries
from onewindow.security.id_protection import IdProtector
from onewindow.staff.access_log import holder_target

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["materials"], responses=ERRORS)

#: a signed-in user allowed to see documents on file (clerk, supervisor)
DocumentReader = Annotated[Principal, Depends(require(Permission.READ_DOCUMENTS))]


@router.get("/materials/{material_id}", response_model=MaterialWithLinks,
            summary="A material on file and its links")
def get_material(material_id: str, _who: DocumentReader, audit: Auditor,
                 c: Conn) -> dict[str, Any]:
    m = queries.get_material(c, material_id)
    audit("material.read", material_id, "ok" if m else "not_found")
    if m is None:
        raise HTTPException(404, f"material {material_id!r} is not in the read model")
    return present.material_out(m) | {"links": [present.link_out(lk) for lk in m["links"]]}


@router.get("/holders/materials", response_model=HolderDocuments,
            summary="Documents already on file for a holder, duplicates folded together")
def get_holder_materials(who: DocumentReader, audit: Auditor, limits: SearchLimits, c: Conn,
                         protector: Protector, id_type: IdType,
                         id_number: Annotated[str, Query(min_length=1, max_length=64)],
                         limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    try:
        query = HolderQuery(id_type=id_type, id_number=id_number)
    except ValidationError as exc:  # the body's rules, for the query string: a 422
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])}
                                      for e in exc.errors()]) from None
    spend_search(limits, who, audit)
    return _holder_documents(c, protector, query, limit, offset, audit)


@router.post("/holders/materials", response_model=HolderDocuments,
             summary="The same lookup with the ID number in the body (kept out of URLs)")
def post_holder_materials(q: HolderQuery, who: DocumentReader, audit: Auditor,
                          limits: SearchLimits, c: Conn, protector: Protector,
                          limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    spend_search(limits, who, audit)
    return _holder_documents(c, protector, q, limit, offset, audit)


def _holder_documents(c: Connection, protector: IdProtector, q: HolderQuery, limit: int,
                      offset: int, audit: AuditTrail) -> dict[str, Any]:
    id_hash = protector.hash(q.id_number)
    found = queries.holder_documents(c, q.id_type, id_hash, limit=limit, offset=offset,
                                     submissions=present.DOCUMENT_SUBMISSIONS,
                                     conflicts=present.DOCUMENT_CONFLICTS)
    total = found["total_documents"]
    audit("holder.documents", holder_target(q.id_type, id_hash),
          "ok" if total else "not_found", f"{total} documents")
    return {"holder": {"id_type": q.id_type, "id_masked": mask_id(q.id_number),
                       "name": found["holder_name"]},
            "total_documents": total,
            "documents": [present.document_out(d) for d in found["documents"]],
            "limit": limit, "offset": offset,
            "next_offset": offset + limit if offset + limit < total else None}
