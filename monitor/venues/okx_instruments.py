"""OKX instruments: ``/api/v5/public/instruments`` rows as contract terms.

Sizes are contracts: a linear contract is ``ctVal x ctMult`` base units, an inverse one
``ctVal x ctMult`` USD (the facts and sources are in ``monitor/venues/okx.py``); a contract
valued in anything else cannot be valued in USD and is left out.
"""

from __future__ import annotations

from typing import Any

import monitor.venues._json as _json
import monitor.venues.instruments as instr
from monitor.errors import FrameError

VENUE = "okx"
INST_TYPES = ("SWAP", "FUTURES")


def family(row: dict[str, Any], inst_id: str) -> tuple[str, str]:
    """Base and quote of an instrument: instFamily (or the older uly), else the instId."""
    family = row.get("instFamily") or row.get("uly") or inst_id
    # str() of a deeply nested value raises RecursionError: only text is read.
    parts = family.split("-") if isinstance(family, str) else []
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise FrameError(_json.BAD_VALUE,
                         f"instrument family of {inst_id!r}: {_json.describe(family)}")
    return parts[0], parts[1]


def instrument_rows(document: object) -> list[Any]:
    doc = _json.obj(document, "instruments document")
    if str(doc.get("code", "0")) != "0":
        raise FrameError("venue_error", f"code {_json.describe(doc.get('code'))}: "
                                        f"{_json.describe(doc.get('msg'))}")
    return _json.arr(_json.req(doc, "data"), "data")


def spec_from_instrument(row: dict[str, Any]) -> instr.InstrumentSpec | None:
    """One row of ``/api/v5/public/instruments`` as a spec; None when it cannot be valued.

    Raises FrameError for a row that is not a readable SWAP/FUTURES instrument.
    """
    inst_id = _json.req_str(row, "instId")
    inst_type = _json.req_str(row, "instType")
    if inst_type not in INST_TYPES:
        return None
    ct_val = _json.positive(_json.req_float(row, "ctVal"), "ctVal")
    ct_mult = _json.positive(_json.opt_float(row, "ctMult", 1.0), "ctMult")
    ct_val_ccy = _json.req_str(row, "ctValCcy").upper()
    base, quote = family(row, inst_id)
    coin, multiplier = instr.normalise_coin(base)
    ct_type = row.get("ctType")
    if ct_type == "linear" and ct_val_ccy == base.upper():
        kind = instr.ContractKind.LINEAR
    elif ct_type == "inverse" and ct_val_ccy in instr.USD_LIKE:
        kind, quote = instr.ContractKind.INVERSE, "USD"
    else:
        # A contract valued in something else (quanto-like); its USD value is not derivable.
        return None
    return instr.InstrumentSpec(
        venue=VENUE,
        instrument=inst_id,
        coin=coin,
        kind=kind,
        contract_size=ct_val * ct_mult,
        quote=quote.upper(),
        base_multiplier=multiplier,
        category=inst_type,
    )
