"""Audit event names: stable ids, each with what it records (en/zh). A test fails when the registry writes an
event that is not listed here, or when one listed here is not documented in the README's audit section."""

from __future__ import annotations

EVENTS: dict[str, tuple[str, str]] = {
    "registry.initialized": ("registry schema created", "登记库初始化"),
    "user.added": ("user added with roles", "新增用户及角色"),
    "user.key_registered": ("public key registered for a user", "登记用户公钥"),
    "user.roles_changed": ("a user's roles replaced (none: the user can no longer act)", "变更用户角色"),
    "version.registered": ("model version registered (develop)", "模型版本登记（开发）"),
    "version.card_updated": ("model card fields updated", "更新模型卡"),
    "version.data_attached": ("data set fingerprint attached", "挂接数据集指纹"),
    "version.submitted": ("develop → validate", "提交验证"),
    "version.sent_back": ("validate → develop, with reason", "退回开发"),
    "version.deployed": ("validate → deploy (and any replaced version)", "部署上线"),
    "version.suspended": ("deployed version suspended (human intervention)", "暂停（人工干预）"),
    "version.resumed": ("suspended version resumed by a person", "恢复运行"),
    "version.retired": ("version retired, with reason", "模型退出"),
    "evaluation.recorded": ("validation or monitoring run stored with findings", "记录验证/监测结果"),
    "approval.signed": ("signed approval or rejection", "签署审批"),
    "attestation.signed": ("signed attestation of a control", "签署声明"),
    "waiver.granted": ("time-limited waiver of a control", "授予豁免"),
    "mlflow.synced": ("MLflow aliases/tags repaired from the registry", "同步 MLflow 别名/标签"),
    "mlflow.ungoverned_checked": (
        "`sync` / `sync --check` result recorded: the MLflow models and versions not under governance",
        "记录 MLflow 中未纳入治理的模型与版本核对结果",
    ),
    "audit.checkpoint": ("signed checkpoint of the audit log issued", "签发审计检查点"),
    "audit.signing_key": (
        "event signing key introduced or rotated (endorsed by the previous key)",
        "启用或轮换审计事件签名密钥",
    ),
    "finding.opened": ("a failed control opened a tracked finding (owner, due date)", "新增发现问题"),
    "finding.updated": ("a tracked finding failed again in a later run", "发现问题再次出现"),
    "finding.assigned": ("a finding's owner or due date changed", "指派发现问题"),
    "finding.remediation_proposed": ("remediation proposed for a finding", "提出整改方案"),
    "finding.closed": ("finding closed by a passing re-run or a signed acceptance", "关闭发现问题"),
    "outcomes.added": (
        "a batch of late outcomes recorded (file digest; rows, matched, already recorded, unknown, before decision)",
        "录入滞后结果（违约标签）",
    ),
    "registry.roles_configured": (
        "PostgreSQL least-privilege roles created or re-applied",
        "配置数据库最小权限角色",
    ),
}

#: The reconciliation of MLflow against the registry, recorded by ``sync`` (``--check`` too); the optional
#: policy requirement ``mlflow_ungoverned_checked`` reads the latest one.
UNGOVERNED_CHECKED = "mlflow.ungoverned_checked"
