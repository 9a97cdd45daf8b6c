// Labels in English and Chinese; the choice is kept in localStorage.

const LABELS = {
  en: {
    "tab.compliance": "Compliance",
    "tab.deadlines": "Complaint deadlines",
    "deadlines.title": "Complaints from regulators' channels",
    "deadlines.channels": "Channels and their deadlines",
    "deadlines.counts": "{overdue} overdue, {due_soon} due soon, {open} open",
    "deadlines.state": "Deadline", "deadlines.due": "Due", "deadlines.channel": "Channel",
    "deadlines.callee": "Callee", "deadlines.received": "Received", "deadlines.handle": "Close",
    "deadlines.overdue": "overdue", "deadlines.due_soon": "due soon", "deadlines.open": "open",
    "deadlines.resolution": "what was done",
    "deadlines.close": "Close", "deadlines.need": "Say what was done",
    "deadlines.closed": "Complaint {id} closed",
    "deadlines.act": "Time to act", "deadlines.forward": "Forwarded within (working days)",
    "deadlines.basis": "Basis", "deadlines.source": "Source",
    "deadlines.days": "days", "deadlines.working_days": "working days",
    "deadlines.law": "law", "deadlines.practice": "practice",
    "deadlines.calendar_unknown": "calendar unknown",
    "deadlines.calendar_unknown_why": "Counted Monday-Friday: its holiday calendar does not know a year it runs into. Check it by hand, or add the year.",
    "consent.title": "Consent ledger", "consent.number": "number",
    "consent.in_force": "{n} consent(s) in force", "consent.action": "Action",
    "consent.campaign": "Campaign", "consent.purpose": "Purpose", "consent.channel": "Channel",
    "consent.source": "how they refused (call, sms, ivr ...)", "consent.revoke": "Record revocation",
    "consent.revoked": "Revocation recorded: effective on the next call",
    "replay.title": "Policy replay", "replay.placeholder": "candidate policy (TOML)",
    "replay.days": "Days", "replay.run": "Replay", "replay.running": "Replaying the call log…",
    "replay.summary": "{calls} calls replayed in {s} s: {changed} would change ({blocked} newly blocked, {allowed} newly allowed, {other} by another rule)",
    "replay.change": "Change", "replay.count": "Calls", "replay.rule": "Candidate rule",
    "replay.was": "Was", "replay.examples": "Examples",
    "replay.newly_blocked": "newly blocked", "replay.newly_allowed": "newly allowed",
    "replay.other_rule": "blocked by another rule",
    "consent.void": "void: consent #{id} ({tenant}, given {given}) was given before the number was disconnected on {when} (reassigned)",
    "consent.grant": "Record consent", "consent.granted": "Consent recorded: it exempts only the calls it covers",
    "consent.given_by": "how it was given (web_form, ivr, call ...)", "consent.expires": "Expires",
    "consent.list": "Consent list", "consent.any": "(all)",
    "consent.import": "Import grants and revocations (CSV)", "consent.imported": "{n} record(s) from {file}",
    "consent.reassigned": "Import reassigned-number results (FCC RND)", "consent.reassigned_list": "Reassigned list",
    "consent.reassigned_done": "{n} number(s) on {list}: consent given before each disconnect date is void",
    "col.disconnected": "Disconnected",
    "pack.title": "Jurisdiction packs: sources and the date they were checked",
    "pack.checked": "checked {date}", "pack.figure": "Figure", "pack.basis": "Basis", "pack.cite": "Source",
    "pack.law": "law", "pack.practice": "practice", "pack.none": "The policy carries no pack (no stated sources)",
    "subtitle": "outbound call screening",
    "tab.live": "Live", "tab.overview": "Overview", "tab.accounts": "Accounts",
    "tab.callers": "Caller IDs", "tab.appeals": "Appeals", "tab.lists": "Lists",
    "logout": "Log out",
    "login.title": "Sign in with an API token",
    "login.help": "Create one with: outguard tokens create USER. It is kept in this tab only.",
    "login.button": "Sign in", "login.failed": "The token was refused",
    "stat.allowed": "Allowed today", "stat.blocked": "Blocked today", "stat.failed": "Failed today (not screened)", "stat.live_calls": "Calls in progress",
    "stat.stream": "Stream", "stat.decisions": "Decisions since start",
    "stat.p99": "Decision time p99", "stat.connect": "Connect rate", "stat.attempts": "Attempts",
    "stat.answered": "Answered", "stat.complaints": "Complaints",
    "stream.live": "live", "stream.down": "reconnecting",
    "live.rate": "Decisions, last 5 minutes", "live.feed": "Live decisions",
    "col.time": "Time", "col.verdict": "Verdict", "col.pbx": "PBX", "col.account": "Account",
    "col.caller_id": "Caller ID", "col.destination": "Destination", "col.reason": "Reason",
    "col.outcome": "Outcome", "col.tenant": "Tenant", "col.state": "State",
    "col.attempts": "Attempts", "col.connect_rate": "Connect rate",
    "col.short_ratio": "Short calls", "col.complaints": "Complaints", "col.marks": "Marks",
    "col.until": "Until", "col.party": "Party", "col.text": "Appeal", "col.evidence": "Evidence",
    "col.created": "Filed", "col.decision": "Decision", "col.reviewer": "Reviewer",
    "col.name": "Name", "col.kind": "Kind", "col.entries": "Entries", "col.number": "Number",
    "col.expires": "Expires", "col.source": "Source", "col.actions": "",
    "verdict.allow": "allowed", "verdict.block": "blocked", "verdict.failed": "failed (not screened)",
    "outcome.answered": "answered {s} s", "outcome.unanswered": "not answered",
    "state.active": "active", "state.suspended": "suspended", "state.disabled": "disabled",
    "state.unknown": "unknown", "state.pending": "pending", "state.approved": "approved",
    "state.rejected": "rejected",
    "range.today": "Last 24 hours", "range.days": "Last 14 days",
    "chart.calls": "Calls: attempts, allowed, blocked, answered (click a period to select it)", "chart.connect": "Connect rate (接通率)",
    "chart.reasons": "Blocks by reason", "series.attempts": "attempts",
    "series.allowed": "allowed", "series.answered": "answered", "series.connect": "connect rate",
    "accounts.title": "Accounts: risk and status", "callers.title": "Caller IDs: risk and status",
    "appeals.pending": "Waiting for review", "appeals.decided": "Decided",
    "appeals.approve": "Approve", "appeals.reject": "Reject",
    "appeals.decision": "reviewer's reasoning", "appeals.need_reason": "Write the reasoning first",
    "appeals.done": "Appeal {id}: {state}",
    "action.suspend": "Suspend 24 h", "action.lift": "Lift", "action.reason": "Reason?",
    "lists.title": "Lists", "lists.entries": "Entries", "lists.search": "digits to search",
    "lists.go": "Search", "lists.more": "more…",
    "empty": "nothing yet", "error": "Error",
    // navigation and shared pieces
    "tab.tenants": "Tenants", "tab.suspensions": "Suspensions", "tab.complaints": "Complaints",
    "tab.users": "Users & tokens", "tab.policy": "Policy", "tab.reports": "Reports",
    "tab.audit": "Audit log",
    "page.of": "{from}–{to} of {total}", "page.range": "{from}–{to}", "page.prev": "previous",
    "page.next": "next", "search": "Search", "search.placeholder": "search",
    "filter.all": "all", "filter.state": "State", "filter.tenant": "Tenant",
    "action.confirm": "Confirm", "action.disable": "Disable", "action.enable": "Enable",
    "action.delete": "Delete", "action.remove": "Remove", "action.history": "History",
    "action.suspend_for": "Suspend", "action.revoke": "Revoke", "action.export": "Export CSV",
    "action.saved": "Saved", "download.done": "Downloaded {name} ({size} bytes)",
    "role.readonly": "read-only", "role.reviewer": "reviewer", "role.admin": "admin",
    "yes": "yes", "no": "no", "tz.named": "Times in {tz} (the policy's time zone)",
    "tz.browser": "Times in your browser's time zone ({tz})",
    // parties
    "col.verification": "Real-name verification", "col.verified_until": "Verified until",
    "col.type": "Type", "col.admin_state": "Admin state", "col.id": "ID", "col.role": "Role",
    "col.user": "User", "col.label": "Label", "col.revoked": "Revoked", "col.scope": "Scope",
    "col.imported": "Imported", "col.category": "Category", "col.callee": "Complainant",
    "col.at": "When", "col.actor": "Who", "col.action": "What", "col.started": "Started",
    "col.ends": "Ends", "col.by": "By", "col.lifted": "Lifted", "col.mode": "Mode",
    "col.stage": "Stage", "col.rule": "Rule", "col.hits": "Hits", "col.where": "Defined in",
    "col.line": "Line", "col.text_raw": "Text", "col.note": "Note",
    "tenants.title": "Tenants (机构)", "tenants.new": "New tenant", "tenants.name": "Name",
    "accounts.new": "New account", "accounts.name": "Name", "accounts.kind": "Kind",
    "callers.put": "Add or update a caller ID", "callers.number": "Number",
    "callers.expired": "expired", "callers.expiring": "expires soon",
    "verification.verified": "verified", "verification.pending": "pending",
    "verification.missing": "missing", "verification.rejected": "rejected",
    "party.account": "account", "party.caller_id": "caller ID", "party.tenant": "tenant",
    "history.title": "History of {party}", "history.strikes": "Strikes: {n}",
    // suspensions
    "susp.title": "Suspend a party", "susp.active": "Active suspensions", "susp.all": "All, with history",
    "susp.kind": "Party kind", "susp.key": "Account, caller ID or tenant", "susp.duration": "For",
    "susp.reason": "Reason", "susp.done": "{party} suspended until {until}",
    "susp.disabled_done": "{party} disabled", "susp.lifted": "Lifted {n} suspension(s) of {party}",
    "dur.3600": "1 hour", "dur.86400": "24 hours", "dur.604800": "7 days", "dur.2592000": "30 days",
    "dur.grade": "the policy's next grade", "dur.permanent": "permanently (disable)",
    "susp.permanent": "until lifted",
    // complaints
    "compl.title": "Complaints and marks, last {days} days", "compl.add": "Record a complaint or mark",
    "compl.import": "Import a CSV (12321 export or callee,caller_id,category,source)",
    "compl.kind": "Kind", "kind.complaint": "complaint", "kind.mark": "harassment mark",
    "compl.callee": "Complainant's number", "compl.caller": "Caller ID complained about",
    "compl.source": "Source", "compl.note": "Note", "compl.added": "Recorded",
    "compl.imported": "{added} added, {rejected} rejected of {lines} lines",
    "cat.harassment": "harassment", "cat.fraud": "fraud", "cat.advertising": "advertising",
    "cat.other": "other",
    // lists
    "lists.new": "New list", "lists.name": "Name", "lists.kind": "Kind", "lists.scope": "Scope",
    "lists.scope_key": "Tenant or campaign", "lists.description": "Description",
    "lists.add": "Add numbers", "lists.numbers": "Numbers (one a line)", "lists.expires": "Expires",
    "lists.reason": "Reason", "lists.added": "{n} added", "lists.removed": "{n} removed",
    "lists.import": "Import a file", "lists.file": "File", "lists.mode": "Mode",
    "lists.mode_replace": "replace the list", "lists.mode_add": "add to the list",
    "lists.format": "Format", "lists.max_reject": "Refuse above this share rejected",
    "lists.uploading": "Uploading {pct}", "lists.processing": "Checking and loading…",
    "lists.imported": "{accepted} accepted, {rejected} rejected; the list has {total}",
    "lists.refused": "Refused: {message}", "lists.rejects": "Rejected lines",
    "lists.delete_confirm": "Delete list {name}?", "lists.deleted": "List {name} deleted",
    "lists.sort_desc": "highest first", "lists.sort_asc": "lowest first",
    "listkind.dnc": "do-not-call", "listkind.blacklist": "blacklist",
    "listkind.complaint": "complaint list", "listkind.register": "national register",
    "listkind.allow": "allow list", "listkind.consent": "consent",
    "listkind.litigator": "litigators", "listkind.reassigned": "reassigned numbers",
    "scope.global": "global", "scope.tenant": "tenant", "scope.campaign": "campaign",
    // users and tokens
    "users.title": "Users", "users.new": "New user", "users.name": "Name", "users.role": "Role",
    "tokens.title": "API tokens", "tokens.new": "New token", "tokens.user": "User",
    "tokens.label": "Label", "tokens.secret": "Copy this token now; it is not shown again:",
    // policy
    "policy.title": "The policy in force", "policy.source": "Source", "policy.tz": "Time zone",
    "policy.region": "Default region", "policy.rules": "Rules in evaluation order (first block wins)",
    "policy.validate": "Check policy text", "policy.text": "Policy (TOML)",
    "policy.check": "Check", "policy.valid": "Valid: nothing to fix",
    "policy.invalid": "{n} problem(s)", "policy.reload": "Reload the policy file",
    "policy.reloaded": "Reloaded: {rules} rules", "policy.lists": "Lists the policy uses",
    "hits.block": "blocked", "hits.shadow": "would block (shadow)", "hits.exempt": "exempted (allow or consent list)",
    // reports
    "reports.by": "Group by", "reports.days": "Window", "reports.tenant": "Tenant",
    "reports.account": "Account", "reports.run": "Show", "by.day": "day", "by.hour": "hour",
    "by.tenant": "tenant", "by.account": "account", "by.day_tenant": "day and tenant",
    "by.day_account": "day and account", "days.1": "last 24 hours", "days.7": "last 7 days",
    "days.30": "last 30 days", "days.90": "last 90 days", "reports.range": "{since} – {until}",
    "col.day": "Day", "col.hour": "Hour", "col.allowed": "Allowed", "col.blocked": "Blocked",
    "col.answered": "Answered", "col.ended": "Ended", "col.avg_duration": "Avg. talk (s)",
    "col.short_calls": "Short calls", "col.listed": "Listed blocks", "col.total": "Total",
    "overview.selected": "Selected: {period}", "series.blocked": "blocked",
    // audit
    "audit.title": "Audit log, newest first", "audit.actor": "Who", "audit.action": "What",
    "audit.party": "Party", "audit.newer": "newer", "audit.older": "older",
  },
  zh: {
    "tab.compliance": "合规",
    "tab.deadlines": "投诉时限",
    "deadlines.title": "监管渠道转来的投诉",
    "deadlines.channels": "渠道与处理时限",
    "deadlines.counts": "{overdue} 件已超期，{due_soon} 件即将到期，{open} 件处理中",
    "deadlines.state": "时限", "deadlines.due": "截止", "deadlines.channel": "渠道",
    "deadlines.callee": "被叫", "deadlines.received": "收到", "deadlines.handle": "办结",
    "deadlines.overdue": "已超期", "deadlines.due_soon": "即将到期", "deadlines.open": "处理中",
    "deadlines.resolution": "处理结果",
    "deadlines.close": "办结", "deadlines.need": "请填写处理结果",
    "deadlines.closed": "投诉 {id} 已办结",
    "deadlines.act": "处理时限", "deadlines.forward": "转办时限（工作日）",
    "deadlines.basis": "依据", "deadlines.source": "出处",
    "deadlines.days": "天", "deadlines.working_days": "个工作日",
    "deadlines.law": "法规", "deadlines.practice": "惯例",
    "deadlines.calendar_unknown": "日历未知",
    "deadlines.calendar_unknown_why": "所跨年份的节假日安排未知，已按周一至周五计算：请人工核对，或补充该年日历。",
    "consent.title": "同意记录", "consent.number": "号码",
    "consent.in_force": "{n} 条同意有效", "consent.action": "操作",
    "consent.campaign": "活动", "consent.purpose": "用途", "consent.channel": "渠道",
    "consent.source": "拒绝方式（电话、短信、IVR…）", "consent.revoke": "记录撤回",
    "consent.revoked": "已记录撤回：下一通呼叫即生效",
    "replay.title": "策略回放", "replay.placeholder": "候选策略（TOML）",
    "replay.days": "天数", "replay.run": "回放", "replay.running": "正在回放呼叫记录…",
    "replay.summary": "回放 {calls} 通呼叫，用时 {s} 秒：{changed} 通结果会改变（新拦截 {blocked}，新放行 {allowed}，改由其他规则拦截 {other}）",
    "replay.change": "变化", "replay.count": "呼叫数", "replay.rule": "候选规则",
    "replay.was": "原结果", "replay.examples": "示例",
    "replay.newly_blocked": "新拦截", "replay.newly_allowed": "新放行",
    "replay.other_rule": "改由其他规则拦截",
    "consent.void": "无效：同意 #{id}（{tenant}，{given} 给出）早于号码 {when} 停机（已改号他人）",
    "consent.grant": "记录同意", "consent.granted": "已记录同意：只豁免其覆盖的呼叫",
    "consent.given_by": "同意方式（网页表单、IVR、电话…）", "consent.expires": "到期",
    "consent.list": "同意名单", "consent.any": "（全部）",
    "consent.import": "导入同意与撤回（CSV）", "consent.imported": "已从 {file} 记录 {n} 条",
    "consent.reassigned": "导入改号查询结果（FCC RND）", "consent.reassigned_list": "改号名单",
    "consent.reassigned_done": "{list} 中 {n} 个号码：停机日期之前给出的同意无效",
    "col.disconnected": "停机日期",
    "pack.title": "法规包：来源及核对日期",
    "pack.checked": "核对于 {date}", "pack.figure": "数值", "pack.basis": "依据", "pack.cite": "出处",
    "pack.law": "法规", "pack.practice": "惯例", "pack.none": "该策略未附法规包（未注明来源）",
    "subtitle": "外呼风控",
    "tab.live": "实时", "tab.overview": "概览", "tab.accounts": "坐席账号",
    "tab.callers": "主叫号码", "tab.appeals": "申诉", "tab.lists": "号码名单",
    "logout": "退出",
    "login.title": "使用 API 令牌登录",
    "login.help": "创建令牌：outguard tokens create 用户名。令牌只保存在本标签页。",
    "login.button": "登录", "login.failed": "令牌无效",
    "stat.allowed": "今日放行", "stat.blocked": "今日拦截", "stat.failed": "今日筛查失败", "stat.live_calls": "通话中",
    "stat.stream": "实时流", "stat.decisions": "启动以来判定数",
    "stat.p99": "判定耗时 p99", "stat.connect": "接通率", "stat.attempts": "呼叫次数",
    "stat.answered": "接通", "stat.complaints": "投诉",
    "stream.live": "已连接", "stream.down": "重连中",
    "live.rate": "最近 5 分钟判定", "live.feed": "实时判定",
    "col.time": "时间", "col.verdict": "结果", "col.pbx": "交换机", "col.account": "账号",
    "col.caller_id": "主叫", "col.destination": "被叫", "col.reason": "原因",
    "col.outcome": "通话结果", "col.tenant": "机构", "col.state": "状态",
    "col.attempts": "呼叫", "col.connect_rate": "接通率",
    "col.short_ratio": "短通话占比", "col.complaints": "投诉", "col.marks": "标记",
    "col.until": "截止", "col.party": "对象", "col.text": "申诉内容", "col.evidence": "证据",
    "col.created": "提交时间", "col.decision": "审核意见", "col.reviewer": "审核人",
    "col.name": "名称", "col.kind": "类型", "col.entries": "号码数", "col.number": "号码",
    "col.expires": "过期", "col.source": "来源", "col.actions": "",
    "verdict.allow": "放行", "verdict.block": "拦截", "verdict.failed": "筛查失败",
    "outcome.answered": "接通 {s} 秒", "outcome.unanswered": "未接通",
    "state.active": "正常", "state.suspended": "封停", "state.disabled": "禁用",
    "state.unknown": "未知", "state.pending": "待审核", "state.approved": "已通过",
    "state.rejected": "已驳回",
    "range.today": "最近 24 小时", "range.days": "最近 14 天",
    "chart.calls": "呼叫、放行、拦截与接通（点击时段可选中）", "chart.connect": "接通率",
    "chart.reasons": "拦截原因", "series.attempts": "呼叫",
    "series.allowed": "放行", "series.answered": "接通", "series.connect": "接通率",
    "accounts.title": "坐席账号：风险与状态", "callers.title": "主叫号码：风险与状态",
    "appeals.pending": "待审核", "appeals.decided": "已处理",
    "appeals.approve": "通过（解封）", "appeals.reject": "驳回",
    "appeals.decision": "审核意见", "appeals.need_reason": "请先填写审核意见",
    "appeals.done": "申诉 {id}：{state}",
    "action.suspend": "封停 24 小时", "action.lift": "解封", "action.reason": "原因？",
    "lists.title": "名单", "lists.entries": "号码", "lists.search": "输入号码片段",
    "lists.go": "搜索", "lists.more": "更多…",
    "empty": "暂无数据", "error": "错误",
    // navigation and shared pieces
    "tab.tenants": "机构", "tab.suspensions": "封停", "tab.complaints": "投诉",
    "tab.users": "用户与令牌", "tab.policy": "策略", "tab.reports": "报表",
    "tab.audit": "审计日志",
    "page.of": "第 {from}–{to} 条，共 {total} 条", "page.range": "第 {from}–{to} 条", "page.prev": "上一页",
    "page.next": "下一页", "search": "搜索", "search.placeholder": "搜索",
    "filter.all": "全部", "filter.state": "状态", "filter.tenant": "机构",
    "action.confirm": "确认", "action.disable": "禁用", "action.enable": "启用",
    "action.delete": "删除", "action.remove": "移除", "action.history": "历史",
    "action.suspend_for": "封停", "action.revoke": "吊销", "action.export": "导出 CSV",
    "action.saved": "已保存", "download.done": "已下载 {name}（{size} 字节）",
    "role.readonly": "只读", "role.reviewer": "审核员", "role.admin": "管理员",
    "yes": "是", "no": "否", "tz.named": "时间为 {tz}（策略时区）",
    "tz.browser": "时间为浏览器时区（{tz}）",
    // parties
    "col.verification": "实名认证", "col.verified_until": "认证有效期至",
    "col.type": "类型", "col.admin_state": "管理状态", "col.id": "编号", "col.role": "角色",
    "col.user": "用户", "col.label": "标签", "col.revoked": "已吊销", "col.scope": "范围",
    "col.imported": "导入时间", "col.category": "类别", "col.callee": "投诉人",
    "col.at": "时间", "col.actor": "操作人", "col.action": "操作", "col.started": "开始",
    "col.ends": "结束", "col.by": "操作人", "col.lifted": "解封", "col.mode": "模式",
    "col.stage": "阶段", "col.rule": "规则", "col.hits": "命中", "col.where": "定义位置",
    "col.line": "行", "col.text_raw": "内容", "col.note": "备注",
    "tenants.title": "机构", "tenants.new": "新建机构", "tenants.name": "名称",
    "accounts.new": "新建账号", "accounts.name": "名称", "accounts.kind": "类型",
    "callers.put": "添加或更新主叫号码", "callers.number": "号码",
    "callers.expired": "已过期", "callers.expiring": "即将过期",
    "verification.verified": "已实名", "verification.pending": "审核中",
    "verification.missing": "未实名", "verification.rejected": "未通过",
    "party.account": "账号", "party.caller_id": "主叫号码", "party.tenant": "机构",
    "history.title": "{party} 的历史", "history.strikes": "违规次数：{n}",
    // suspensions
    "susp.title": "封停", "susp.active": "封停中", "susp.all": "全部（含历史）",
    "susp.kind": "对象类型", "susp.key": "账号、主叫号码或机构", "susp.duration": "时长",
    "susp.reason": "原因", "susp.done": "{party} 已封停至 {until}",
    "susp.disabled_done": "{party} 已禁用", "susp.lifted": "已解除 {party} 的 {n} 条封停",
    "dur.3600": "1 小时", "dur.86400": "24 小时", "dur.604800": "7 天", "dur.2592000": "30 天",
    "dur.grade": "按策略的下一级", "dur.permanent": "永久（禁用）",
    "susp.permanent": "直至解封",
    // complaints
    "compl.title": "最近 {days} 天的投诉与标记", "compl.add": "登记投诉或标记",
    "compl.import": "导入 CSV（12321 导出文件，或 callee,caller_id,category,source）",
    "compl.kind": "类型", "kind.complaint": "投诉", "kind.mark": "骚扰标记",
    "compl.callee": "投诉人号码", "compl.caller": "被投诉的主叫号码",
    "compl.source": "来源", "compl.note": "备注", "compl.added": "已登记",
    "compl.imported": "共 {lines} 行：新增 {added}，拒绝 {rejected}",
    "cat.harassment": "骚扰", "cat.fraud": "诈骗", "cat.advertising": "广告",
    "cat.other": "其他",
    // lists
    "lists.new": "新建名单", "lists.name": "名称", "lists.kind": "类型", "lists.scope": "范围",
    "lists.scope_key": "机构或活动", "lists.description": "说明",
    "lists.add": "添加号码", "lists.numbers": "号码（每行一个）", "lists.expires": "过期时间",
    "lists.reason": "原因", "lists.added": "已添加 {n} 个", "lists.removed": "已移除 {n} 个",
    "lists.import": "导入文件", "lists.file": "文件", "lists.mode": "方式",
    "lists.mode_replace": "替换整个名单", "lists.mode_add": "追加到名单",
    "lists.format": "格式", "lists.max_reject": "拒绝比例超过此值则放弃导入",
    "lists.uploading": "上传中 {pct}", "lists.processing": "校验并导入中…",
    "lists.imported": "接受 {accepted}，拒绝 {rejected}；名单现有 {total} 个号码",
    "lists.refused": "未导入：{message}", "lists.rejects": "被拒绝的行",
    "lists.delete_confirm": "删除名单 {name}？", "lists.deleted": "名单 {name} 已删除",
    "lists.sort_desc": "从大到小", "lists.sort_asc": "从小到大",
    "listkind.dnc": "免打扰", "listkind.blacklist": "黑名单",
    "listkind.complaint": "投诉名单", "listkind.register": "国家拒接登记",
    "listkind.allow": "白名单", "listkind.consent": "已同意",
    "listkind.litigator": "职业诉讼人", "listkind.reassigned": "已改号",
    "scope.global": "全局", "scope.tenant": "机构", "scope.campaign": "活动",
    // users and tokens
    "users.title": "用户", "users.new": "新建用户", "users.name": "用户名", "users.role": "角色",
    "tokens.title": "API 令牌", "tokens.new": "新建令牌", "tokens.user": "用户",
    "tokens.label": "标签", "tokens.secret": "请立即复制此令牌，之后不再显示：",
    // policy
    "policy.title": "当前生效的策略", "policy.source": "来源", "policy.tz": "时区",
    "policy.region": "默认地区", "policy.rules": "规则（按执行顺序，先拦截者生效）",
    "policy.validate": "校验策略文本", "policy.text": "策略（TOML）",
    "policy.check": "校验", "policy.valid": "有效：无需修改",
    "policy.invalid": "{n} 个问题", "policy.reload": "重新加载策略文件",
    "policy.reloaded": "已重新加载：{rules} 条规则", "policy.lists": "策略使用的名单",
    "hits.block": "拦截", "hits.shadow": "影子模式拦截", "hits.exempt": "豁免（白名单或已同意）",
    // reports
    "reports.by": "分组", "reports.days": "时间范围", "reports.tenant": "机构",
    "reports.account": "账号", "reports.run": "查看", "by.day": "按天", "by.hour": "按小时",
    "by.tenant": "按机构", "by.account": "按账号", "by.day_tenant": "按天和机构",
    "by.day_account": "按天和账号", "days.1": "最近 24 小时", "days.7": "最近 7 天",
    "days.30": "最近 30 天", "days.90": "最近 90 天", "reports.range": "{since} 至 {until}",
    "col.day": "日期", "col.hour": "小时", "col.allowed": "放行", "col.blocked": "拦截",
    "col.answered": "接通", "col.ended": "已结束", "col.avg_duration": "平均通话（秒）",
    "col.short_calls": "短通话", "col.listed": "名单拦截", "col.total": "合计",
    "overview.selected": "已选：{period}", "series.blocked": "拦截",
    // audit
    "audit.title": "审计日志（最新在前）", "audit.actor": "操作人", "audit.action": "操作",
    "audit.party": "对象", "audit.newer": "较新", "audit.older": "较早",
  },
};

let lang = localStorage.getItem("outguard.lang") ||
  (navigator.language && navigator.language.startsWith("zh") ? "zh" : "en");

export function language() { return lang; }

export function t(key, values) {
  const own = LABELS[lang] || LABELS.en;
  let text = key in own ? own[key] : key in LABELS.en ? LABELS.en[key] : key;
  for (const [name, value] of Object.entries(values || {})) {
    text = text.replace(`{${name}}`, String(value));
  }
  return text;
}

export function applyLabels(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  const button = document.getElementById("lang");
  if (button) button.textContent = lang === "zh" ? "English" : "中文";
}

export function toggleLanguage() {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("outguard.lang", lang);
  applyLabels();
}

// A reason code in words, in the user's language, with the code itself (what logs,
// CDRs and the API carry) after it.
const REASONS = {
  en: {
    ok: "allowed", exempt: "exempt", dnc_listed: "on a do-not-call list",
    blacklisted: "blacklisted", complaint_listed: "on a complaint list",
    register_listed: "on a national register", register_stale: "register copy too old",
    quiet_hours: "outside calling hours", holiday: "holiday", rate_cap: "call rate cap",
    destination_cap: "same number called too often", concurrency_cap: "too many calls at once",
    distinct_callees_cap: "too many different numbers", destination_invalid: "invalid number",
    prefix_denied: "number range refused", region_denied: "region refused",
    line_type_denied: "line type refused", caller_id_service_number: "service number as caller ID",
    caller_id_missing: "no caller ID", caller_id_invalid: "invalid caller ID",
    caller_id_not_owned: "caller ID not the tenant's", caller_id_foreign: "foreign caller ID",
    caller_id_is_destination: "caller ID equals the callee", screening_unavailable: "screening unavailable",
  },
  zh: {
    ok: "放行", exempt: "豁免", dnc_listed: "免打扰名单", blacklisted: "黑名单",
    complaint_listed: "投诉名单", register_listed: "拒接登记", register_stale: "登记名单过旧",
    quiet_hours: "非呼叫时段", holiday: "节假日", rate_cap: "频次超限",
    destination_cap: "同号频次超限", concurrency_cap: "并发超限",
    distinct_callees_cap: "外呼号码数超限", destination_invalid: "号码无效",
    prefix_denied: "号段禁止", region_denied: "地区禁止", line_type_denied: "号码类型禁止",
    caller_id_service_number: "禁用服务号码外呼", caller_id_missing: "无主叫号码",
    caller_id_invalid: "主叫号码无效", caller_id_not_owned: "主叫号码不属于本机构",
    caller_id_foreign: "境外主叫号码", caller_id_is_destination: "主叫与被叫相同",
    screening_unavailable: "风控不可用",
  },
};
const PARTIES = { en: { account: "account", caller_id: "caller ID", tenant: "tenant" },
                  zh: { account: "账号", caller_id: "主叫", tenant: "机构" } };
const STATES = { en: { suspended: "suspended", disabled: "disabled", unverified: "not verified", expired: "verification expired" },
                 zh: { suspended: "封停", disabled: "禁用", unverified: "未实名", expired: "实名已过期" } };

export function reason(code) {
  if (!code) return "–";
  let words = (REASONS[lang] || REASONS.en)[code];
  const party = /^(account|caller_id|tenant)_(suspended|disabled|unverified|expired)$/.exec(code);
  if (!words && party) {
    words = lang === "zh" ? `${PARTIES.zh[party[1]]}${STATES.zh[party[2]]}`
      : `${PARTIES.en[party[1]]} ${STATES.en[party[2]]}`;
  }
  return words ? `${words} (${code})` : code;
}

// More labels (and reason names) from a page's own module: addLabels({en: {...}, zh:
// {...}}, {code: "中文"}).
export function addLabels(more, reasonsZh) {
  for (const [code, table] of Object.entries(more)) Object.assign(LABELS[code], table);
  Object.assign(REASONS.zh, reasonsZh || {});
}

// The same, each key once with its words in both languages: addLabelPairs({"a.b":
// ["English", "中文"]}, {code: "中文"}).
export function addLabelPairs(pairs, reasonsZh) {
  const en = {}, zh = {};
  for (const [key, [inEn, inZh]] of Object.entries(pairs)) { en[key] = inEn; zh[key] = inZh; }
  addLabels({ en, zh }, reasonsZh);
}
