"""The FastAGI server: the same screening decision for plain ``AGI()`` dialplans.

A small server of its own on ``asyncio.start_server`` rather than panoramisk's
``fast_agi.Application``, because the parts of that class outguard would use are the ones
that are unsound in panoramisk 1.4:

* its header loop (``while b'\\n\\n' not in buffer: buffer += await reader.read(100)``)
  spins forever once a peer closes before the blank line (``read`` returns ``b''``),
  freezing the event loop every other call shares. Here the environment is read with one
  bounded ``readuntil`` under a timeout; a short, slow or oversized header block closes
  that connection only.
* ``add_route`` wraps plain functions with ``asyncio.coroutine``, removed in Python 3.11:
  here :meth:`FastAgiServer.add_route` refuses anything but ``async def`` at registration.
* routes match the whole script exactly, so ``screen?mode=x`` is "no route", and an
  unrouted request is closed without a word (AGISTATUS=SUCCESS, no verdict). Here the
  route is the path without its query string, and an unknown route sets
  ``OUTGUARD_VERDICT=failed`` and logs an error, so the dialplan's failure branch applies.
* its reply parser takes a variable whose value is ``hangup`` for a hangup.

Asterisk processes one command at a time and loses commands written ahead of their
reply (measured: pipelined SET VARIABLEs after the first never answer), so commands are
strictly sequential, and there are few of them. The dialplan passes the who/why
variables as AGI arguments (``AGI(url,${EXTEN},account,tenant,purpose,campaign,id,pbx,
entity)``), then the channel's ``OUTGUARD_DECISION_ID`` (see ``Screener._new_id``), the
dialplan's ``OUTGUARD_PBX`` (see ``outguard.dialplan_pbx``) and the Asterisk's
``${ENTITYID}`` (in cluster mode the PBX name is claimed for the Asterisk whose calls come
under it, ``outguard.pbx_claims``: another Asterisk's calls under that name get
``OUTGUARD_VERDICT=failed``, reason ``agi_pbx_conflict``);
an older dialplan that passes only the number costs one ``GET FULL VARIABLE`` more). A
plainly allowed call is ONE round trip: ``SET VARIABLE OUTGUARD_VERDICT allow``, and
``[outguard-allow]`` sets the rest. Otherwise the verdict's token values go in one
``EXEC MSet``, and only free text (the message, a list of shadow rules) takes a quoted
``SET VARIABLE`` of its own: a blocked call is two round trips.

One server takes the calls of every PBX, and must tell them apart (two PBXes may send the
same unique id): the AGI URL names the PBX (``agi://outguard:4573/screen?pbx=pbx2``, set
per PBX in its ``OUTGUARD_AGI``), else the peer's address is an [[ami]] target's host that
no other target shares, else the only PBX there is. A call whose PBX cannot be told gets
``OUTGUARD_VERDICT=failed`` (reason ``agi_unknown_pbx``): the dialplan's failure policy
applies, as for an unknown route, and the error names the peer.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from agi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    get_full_variables,
    is_token,
    mset,
    parse_env,
    parse_reply,
    set_variable,
    split_fields,
)
from outguard import dialplan_vars as dv
from outguard import faults, screening
from outguard.callfacts import ChannelFacts
from outguard.dialplan_pbx import DialplanPbx
from outguard.latency import LatencyRecorder
from outguard.live import DEFAULT_PBX
from outguard.pbx_claims import PbxClaims, PbxConflict
from outguard.probes import SCREENING_FAILURES, agi_operation, roundtrip
from outguard.screening import (
    CallTracker,
    Unscreened,
    fail_rule,
    failure_vars,
    log_decision,
    plainly_allowed,
    verdict_vars,
)
from outguard.service import Decision, Screener

logger = logging.getLogger(__name__)

SCREEN_ROUTE = "screen"
#: connections the kernel queues while the server is busy (asyncio's default is 100).
#: Every call is a connection, and Asterisk gives up connecting after 2 s
#: (MAX_AGI_CONNECT), failing the call to the dialplan's failure branch: a queue of 100
#: fills in about a second at 80 calls/s while the loop is held up (a host short of CPU,
#: a long garbage collection). Capped by the kernel's net.core.somaxconn (4096 here).
BACKLOG = 4096
#: the who/why variables: AGI arguments 2-5, or (older dialplans) one GET FULL VARIABLE
WHO_VARS = (dv.ACCOUNT, dv.TENANT, dv.PURPOSE, dv.CAMPAIGN)
#: the AGI arguments after the who/why ones: the channel's OUTGUARD_DECISION_ID (index 5),
#: the dialplan's OUTGUARD_PBX (index 6) and the Asterisk's ${ENTITYID} (index 7)
CARRIED_ARG = len(WHO_VARS) + 1
PBX_ARG = CARRIED_ARG + 1
ENTITY_ARG = PBX_ARG + 1
#: how long calls of an Asterisk refused its PBX name are answered without asking the
#: store again
REFUSED_S = 5.0
FAILED = dv.FAILED


class ChannelHungUp(Exception):
    """Asterisk closed the connection, or refused a command on a dead channel (511)."""


class AgiSession:
    """One FastAGI connection: send a command, read its reply, one at a time."""

    def __init__(
        self, request: AgiRequest, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter, timeout_s: float,
    ) -> None:
        self.request = request
        self.reader = reader
        self.writer = writer
        self.timeout_s = timeout_s
        self.hung_up = False

    async def command(self, line: str) -> AgiReply:
        with roundtrip("agi", agi_operation(line)):
            self.writer.write(line.encode("utf-8") + b"\n")
            await self.writer.drain()
            async with asyncio.timeout(self.timeout_s):
                return await self._reply()

    async def _reply(self) -> AgiReply:
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise ChannelHungUp("Asterisk closed the FastAGI connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "HANGUP":  # sent once, ahead of the reply, when the channel hangs up
                self.hung_up = True
                continue
            if line.startswith("100 "):
                continue
            if line.startswith("520-"):  # usage text follows, up to "520 End of ..."
                while line and not line.startswith("520 "):
                    line = (await self.reader.readline()).decode("utf-8", "replace")
                return AgiReply(520, text="usage error")
            reply = parse_reply(line)
            if reply.code == 511:
                self.hung_up = True
                raise ChannelHungUp(reply.text)
            return reply

    async def set_var(self, name: str, value: str) -> None:
        reply = await self.command(set_variable(name, value))
        if not reply.ok:
            raise AgiProtocolError(f"SET VARIABLE {name} failed: {reply.code} {reply.text}")

    async def set_tokens(self, variables: dict[str, str]) -> None:
        """Set ``variables``, the last one last (the verdict: a session cut short never
        leaves a verdict without its details): token values in one ``EXEC MSet``, any
        other value (free text, an id built from what a dialplan passed) first, one
        ``SET VARIABLE`` each, quoted and escaped (MSet splits on commas and strips
        quotes). The last one goes on its own after the MSet when it is not a token."""
        if not variables:
            return
        *rest, (last, last_value) = variables.items()
        tokens = {name: value for name, value in rest if is_token(value)}
        for name, value in rest:
            if name not in tokens:
                await self.set_var(name, value)
        if is_token(last_value):
            tokens[last] = last_value
        if tokens:
            reply = await self.command(mset(tokens))
            if reply.code != 200 or reply.result == "-1":
                raise AgiProtocolError(f"MSet failed: {reply.code} {reply.text}")
        if last not in tokens:
            await self.set_var(last, last_value)

    async def get_vars(self, names: tuple[str, ...]) -> dict[str, str]:
        """Several variables in one round trip; one each only when a value contains the
        separator."""
        reply = await self.command(get_full_variables(names))
        fields = split_fields(reply.value, len(names))
        if fields is None:
            fields = []
            for name in names:
                single = await self.command(get_full_variables((name,)))
                fields.append(single.value or "")
        return dict(zip(names, fields, strict=True))


Route = Callable[[AgiSession], Awaitable[None]]


def which_pbx(named: str | None, peer: str, pbxes: Sequence[str],
              hosts: Mapping[str, str]) -> str | None:
    """The PBX a FastAGI call comes from: the one the URL names (``?pbx=``; None when it
    names an unknown one), else the one whose [[ami]] host is the peer's address and no
    other's, else the only PBX; None when it cannot be told."""
    if named is not None:
        return named if named in pbxes else None
    owners = [pbx for pbx, host in hosts.items() if host == peer]
    if len(owners) == 1:
        return owners[0]
    return pbxes[0] if len(pbxes) == 1 else None


class FastAgiServer:
    """Listens for ``AGI(agi://host:port/screen,${EXTEN})`` and screens each channel."""

    def __init__(
        self,
        screener: Screener,
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        tracker: CallTracker | None = None,
        trackers: Mapping[str, CallTracker] | None = None,
        pbxes: Sequence[str] = (DEFAULT_PBX,),
        pbx_hosts: Mapping[str, str] | None = None,
        dialplans: Mapping[str, DialplanPbx] | None = None,
        claims: PbxClaims | None = None,
        budget_ms: float = 200.0,
        fail_mode: str = "closed",
        fail_cause: int = 34,
        header_timeout_s: float = 5.0,
        command_timeout_s: float = 5.0,
        max_header_bytes: int = 64 * 1024,
    ) -> None:
        self.screener = screener
        self.host = host
        self.port = port
        #: the PBXes this server screens for, the AMI tracker of each (``tracker``: the
        #: one PBX's), and the address each PBX's FastAGI connections come from
        self.pbxes = tuple(pbxes)
        self.trackers: dict[str, CallTracker] = dict(trackers or {})
        if tracker is not None:
            self.trackers[self.pbxes[0]] = tracker
        self.pbx_hosts = dict(pbx_hosts or {})
        #: each PBX's OUTGUARD_PBX: what [outguard-allow] builds the decision id from
        self.dialplans = {pbx: DialplanPbx(pbx, pbx if screener.reserves else "")
                          for pbx in self.pbxes}
        self.dialplans.update(dialplans or {})
        #: cluster mode: each PBX name is claimed for the Asterisk its calls come from
        self.claims = claims
        self._entities: dict[str, tuple[str, float]] = {}  # pbx -> (entity, last call)
        self._refused: dict[tuple[str, str], float] = {}  # (pbx, entity) -> until
        self._unnamed: set[str] = set()  # PBXes whose dialplan does not pass ${ENTITYID}
        self.budget_ms = budget_ms
        self.fail_mode, self.fail_cause = fail_mode, fail_cause  # for channels without
        self.header_timeout_s = header_timeout_s
        self.command_timeout_s = command_timeout_s
        self.max_header_bytes = max_header_bytes
        self.connected = False  # listening, for /health
        #: connection accepted -> the verdict's last SET VARIABLE answered, per call
        self.handling = LatencyRecorder()
        self.rejected = 0  # connections closed before a full environment
        self._routes: dict[str, Route] = {}
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.add_route(SCREEN_ROUTE, self.screen)

    def add_route(self, path: str, handler: Route) -> None:
        """Register ``async def handler(session)`` for ``agi://host/path``."""
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"FastAGI route {path!r}: the handler must be an async def")
        key = path.strip("/")
        if key in self._routes:
            raise ValueError(f"FastAGI route {path!r} exists already")
        self._routes[key] = handler

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=self.max_header_bytes,
            backlog=BACKLOG,
        )
        self.connected = True
        if not _is_loopback(self.host):
            logger.warning(
                "FastAGI listening on %s:%d, NOT loopback: anyone who reaches this port can "
                "ask for decisions and learn the lists; firewall it to the PBX",
                self.host, self.port,
            )
        else:
            logger.info("FastAGI listening on %s:%d", self.host, self.port)
        untracked = [pbx for pbx in self.pbxes if pbx not in self.trackers]
        if untracked:
            logger.warning("FastAGI without AMI for pbx %s: answer, duration and hangup cause "
                           "of allowed calls are not recorded and their concurrency slots are "
                           "only released after the screener's max call age",
                           ", ".join(untracked))

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop listening; let sessions under way finish for up to ``grace_s`` (at least a
        call's budget), then cut them (Asterisk then sees no verdict, and the dialplan's
        failure branch applies; a call cut before its decision is logged ``failed``,
        reason ``outguard_stopping``)."""
        self.connected = False
        if self._server is not None:
            self._server.close()
        if self._sessions:  # a decision waiting for readiness has its budget to finish
            await asyncio.wait(set(self._sessions),
                               timeout=max(grace_s, self.budget_ms / 1000 + 0.5))
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- one connection -------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        accepted = time.perf_counter()
        who = str(writer.get_extra_info("peername"))
        try:
            request = await self._read_request(reader, writer)
            if request is None:
                return
            who = request.channel or request.uniqueid or who
            session = AgiSession(request, reader, writer, self.command_timeout_s)
            handler = self._routes.get(request.route)
            if handler is None:
                await self._unknown_route(session)
            else:
                await handler(session)
            self.handling.add(time.perf_counter() - accepted)
        except (ChannelHungUp, ConnectionError, TimeoutError, AgiProtocolError) as err:
            logger.info("FastAGI session for %s ended early: %s", who,
                        err or type(err).__name__)
        except Exception:
            logger.exception("FastAGI session for %s failed", who)
        finally:
            self._sessions.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> AgiRequest | None:
        """The environment, bounded in size and time; None (and the connection closed)
        when the peer does not send a whole one."""
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(self.header_timeout_s):
                block = await reader.readuntil(b"\n\n")
            return parse_env(block)
        except asyncio.IncompleteReadError as err:
            why = f"closed after {len(err.partial)} bytes, before the end of the environment"
        except asyncio.LimitOverrunError:
            why = f"environment longer than {self.max_header_bytes} bytes"
        except TimeoutError:
            why = f"no complete environment within {self.header_timeout_s:g} s"
        except AgiProtocolError as err:
            why = str(err)
        except ConnectionError as err:
            why = str(err) or type(err).__name__
        self.rejected += 1
        logger.warning("FastAGI connection from %s rejected: %s", peer, why)
        return None

    async def _unknown_route(self, session: AgiSession) -> None:
        """Never let a wrong URL look like an allow."""
        req = session.request
        logger.error("FastAGI: no route %r (agi_request %s) for %s; verdict %s, the dialplan's "
                     "failure branch applies", req.script, req.env.get("agi_request", "?"),
                     req.channel, FAILED)
        await self._failed(session, "agi_unknown_route",
                           _facts(req, {}, self.pbx_of(session) or DEFAULT_PBX))

    async def _failed(self, session: AgiSession, reason: str, facts: ChannelFacts) -> None:
        """No verdict: hand the dialplan's failure branch the failure policy resolved by
        the one rule (``dialplan_vars.failure_policy``): the channel's own
        OUTGUARD_FAIL_MODE / _CAUSE, else this service's calls.fail_mode / fail_cause; and
        record the call, verdict ``failed`` with that policy (a fail-open call is followed
        to its end by the hangup handler's event, like an allowed one)."""
        try:
            channel = await session.get_vars((dv.FAIL_MODE, dv.FAIL_CAUSE))
        except (ChannelHungUp, ConnectionError, TimeoutError):
            self.screener.failed(facts, screening.CHANNEL_GONE, "")
            raise
        mode, cause = dv.failure_policy(channel, self.fail_mode, self.fail_cause)
        # durable before the dialplan hears it: a kill -9 never loses the row
        call_id = await self.screener.failed_durably(facts, reason, fail_rule(mode), cause)
        if faults.ARMED:
            await faults.reached(faults.AFTER_FAILURE)
        tracker = self.trackers.get(facts.pbx)
        if mode == "open" and tracker is not None and facts.channel_id:
            tracker.track(facts.channel_id)  # before any await: no race
        tokens = failure_vars(FAILED, reason, call_id)
        verdict = tokens.pop(dv.VERDICT)  # the verdict last, after its details
        try:
            await session.set_tokens({**tokens, dv.FAIL_MODE: mode,
                                      dv.FAIL_CAUSE: str(cause), dv.VERDICT: verdict})
        except (ChannelHungUp, ConnectionError, TimeoutError):
            if tracker is None:  # nobody else will see it end
                self.screener.ended(call_id, None)
            raise

    # -- the screen route -----------------------------------------------------------------

    def pbx_of(self, session: AgiSession) -> str | None:
        """The PBX of this call (see :func:`which_pbx`)."""
        peer = session.writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        return which_pbx(session.request.query.get("pbx"), address, self.pbxes,
                         self.pbx_hosts)

    async def screen(self, session: AgiSession) -> None:
        req = session.request
        pbx = self.pbx_of(session)
        if pbx is None:
            peer = session.writer.get_extra_info("peername")
            logger.error("FastAGI: cannot tell which PBX %s (from %s, agi_request %s) is on: "
                         "name it in the URL (screen?pbx=NAME, one of %s); verdict %s, the "
                         "dialplan's failure branch applies", req.channel, peer,
                         req.env.get("agi_request", "?"), ", ".join(self.pbxes), FAILED)
            SCREENING_FAILURES.labels("agi", "dialplan").inc()
            # the row names no PBX of the configuration: none could be told
            await self._failed(session, "agi_unknown_pbx", _facts(req, {}, DEFAULT_PBX))
            return
        args = req.args
        if self.claims is not None:
            entity = args[ENTITY_ARG].strip() if len(args) > ENTITY_ARG else ""
            held = self._entities.get(pbx)
            if held is None or held[0] != entity:
                conflict = await self._claim(pbx, entity, session)
                if conflict:
                    SCREENING_FAILURES.labels("agi", "dialplan").inc()
                    # the row is not the name's: "<pbx>?<entity id>", so its id cannot
                    # meet one of the calls of the Asterisk that holds the name
                    await self._failed(session, "agi_pbx_conflict",
                                       _facts(req, {}, f"{pbx}?{entity}"))
                    return
            else:
                self._entities[pbx] = (entity, time.monotonic())  # its claim stays renewed
        tracker = self.trackers.get(pbx)
        if len(args) > len(WHO_VARS):
            who = dict(zip(WHO_VARS, (a.strip() for a in args[1:]), strict=False))
        else:  # a dialplan that passes only the number
            try:
                who = await session.get_vars(WHO_VARS)
            except (ChannelHungUp, ConnectionError, TimeoutError):
                self.screener.failed(_facts(req, {}, pbx), screening.CHANNEL_GONE, "")
                raise
        facts = _facts(req, who, pbx, carried_of(args))
        try:
            outcome = await self._decide(facts)
        except asyncio.CancelledError:  # stop(): the dialplan's failure branch applies
            self.screener.failed(facts, screening.SHUTDOWN, "")
            raise
        if isinstance(outcome, Unscreened):
            SCREENING_FAILURES.labels("agi", "dialplan").inc()
            await self._failed(session, outcome.reason, facts)
            return
        decision = outcome
        log_decision(req.channel or req.uniqueid, decision)
        if faults.ARMED:
            await faults.reached(faults.AFTER_DECISION, self.screener.store)
        if decision.allowed and tracker is not None and req.uniqueid:
            tracker.track(req.uniqueid)  # before any await: no race
        try:
            await self._set_verdict(session, decision, pbx)
        except (ChannelHungUp, ConnectionError, TimeoutError):
            if decision.allowed and tracker is None:  # nobody else will see it end
                self.screener.ended(decision.id, None)
            raise

    async def _claim(self, pbx: str, entity: str, session: AgiSession) -> str:
        """Cluster mode, the first call of an Asterisk under ``pbx`` (``entity``: its
        ``${ENTITYID}``, the eighth AGI argument): claim the name for it
        (``PbxClaims.claim_agi``). Returns why its calls are refused ("" when they are
        screened); refused calls are answered for ``REFUSED_S`` without asking again."""
        assert self.claims is not None
        if not entity:
            if pbx not in self._unnamed:
                self._unnamed.add(pbx)
                logger.warning("pbx %s: its FastAGI calls do not pass ${ENTITYID} (the eighth"
                               " AGI argument, dialplan/outguard.conf): which Asterisk sends"
                               " them cannot be checked against the PBX name's claim", pbx)
            return ""
        now = time.monotonic()
        if now < self._refused.get((pbx, entity), float("-inf")):
            return self.claims.conflicts.get((pbx, f"agi({entity})"), "refused")
        peer = session.writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"

        lease_s = self.claims.lease_s

        def connected() -> bool:  # calls keep coming from it: its claim is renewed
            held = self._entities.get(pbx)
            return held is not None and held[0] == entity \
                and time.monotonic() - held[1] < lease_s

        try:
            await self.claims.claim_agi(pbx, entity, address, connected)
        except PbxConflict as err:
            self._refused[(pbx, entity)] = now + REFUSED_S
            return str(err)
        self._entities[pbx] = (entity, time.monotonic())
        return ""

    async def _decide(self, facts: ChannelFacts) -> Decision | Unscreened:
        return await screening.decide(self.screener, facts, self.budget_ms)

    def dialplan_id(self, req: AgiRequest, pbx: str) -> str | None:
        """The decision id ``[outguard-allow]`` builds for this channel: from its
        ``OUTGUARD_PBX``, the seventh AGI argument (an older dialplan, which does not pass
        it, builds the bare unique id); None when that is not what outguard needs."""
        args = req.args
        dialplan = self.dialplans[pbx]
        if len(args) <= PBX_ARG:
            return req.uniqueid if not dialplan.expected else None
        return dialplan.call_id(req.uniqueid, args[PBX_ARG].strip())

    async def _set_verdict(self, session: AgiSession, decision: Decision, pbx: str) -> None:
        if plainly_allowed(decision, self.dialplan_id(session.request, pbx)):
            await session.set_var(dv.VERDICT, dv.ALLOW)  # [outguard-allow] sets the rest
            return
        variables = verdict_vars(decision)
        announcement = decision.verdict.announcement
        if not decision.allowed and announcement:
            variables[dv.ANNOUNCEMENT] = announcement
        # free text (the message) one by one, quoted and escaped; then the tokens in one
        # MSet, the verdict last (set_tokens)
        verdict = variables.pop(dv.VERDICT)
        await session.set_tokens({**variables, dv.VERDICT: verdict})


def carried_of(args: Sequence[str]) -> str | None:
    """The channel's ``OUTGUARD_DECISION_ID`` (the sixth AGI argument: the decision last
    carried out on it, "" for none), or None from a dialplan that does not pass it."""
    return args[CARRIED_ARG].strip() if len(args) > CARRIED_ARG else None


def _facts(req: AgiRequest, who: dict[str, str], pbx: str = DEFAULT_PBX,
           carried: str | None = None) -> ChannelFacts:
    """What the FastAGI request tells of the channel (``who``: the OUTGUARD_ACCOUNT,
    _TENANT, _PURPOSE, _CAMPAIGN values, when known) on ``pbx``; ``carried``: see
    :func:`carried_of`."""
    return ChannelFacts(
        adapter="agi",
        channel_id=req.uniqueid,
        channel_name=req.channel,
        dialed=req.dialed,
        caller_id=req.caller_id,
        account=who.get(dv.ACCOUNT, ""),
        tenant=who.get(dv.TENANT, ""),
        purpose=who.get(dv.PURPOSE, ""),
        campaign=who.get(dv.CAMPAIGN, ""),
        pbx=pbx,
        carried=carried,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
