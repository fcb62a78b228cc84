//! A plain summary of who may do what under a policy, for reports (`steward report`).

use serde::Serialize;

use crate::model::Policy;

/// Roles, principals, tool classes and rules of a loaded policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub source: String,
    pub version: String,
    pub default_effect: String,
    pub mode: String,
    pub roles: Vec<RoleSummary>,
    pub principals: Vec<PrincipalSummary>,
    pub tools: Vec<ToolClassSummary>,
    pub rules: Vec<RuleSummary>,
    /// What each risk level leads to when no rule decides.
    pub risk_effects: Vec<(String, String)>,
    pub approval_mode: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleSummary {
    pub name: String,
    pub capabilities: Vec<String>,
    /// Tool classes whose required capabilities this role has (classes that require none are
    /// open to every role and not listed).
    pub may_call: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrincipalSummary {
    pub id: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolClassSummary {
    pub tools: String,
    pub risk: Option<String>,
    pub requires: Vec<String>,
    pub approval: Option<String>,
    /// `N of role, role` when approvals are restricted.
    pub approvers: Option<String>,
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleSummary {
    pub id: String,
    pub effect: String,
    pub tools: String,
    pub reason: Option<String>,
    pub shadow: bool,
}

fn approvers(a: &crate::model::Approvers) -> String {
    if a.roles.is_empty() {
        format!("{} approver(s)", a.count)
    } else {
        format!("{} of {}", a.count, a.roles.join(", "))
    }
}

impl Policy {
    /// Who may do what: roles with their capabilities and the tool classes they may call,
    /// named principals, tool classes, rules.
    pub fn summary(&self) -> PolicySummary {
        let tools: Vec<ToolClassSummary> = self
            .tools
            .iter()
            .map(|t| ToolClassSummary {
                tools: t.label(),
                risk: t.risk.map(|r| r.as_str().to_string()),
                requires: t.requires.clone(),
                approval: t.approval.map(|a| a.as_str().to_string()),
                approvers: t.approvers.as_ref().map(approvers),
                operations: t.operations.iter().map(|o| o.name.clone()).collect(),
            })
            .collect();
        let roles = self
            .roles
            .iter()
            .map(|(name, caps)| RoleSummary {
                name: name.clone(),
                capabilities: caps.iter().cloned().collect(),
                may_call: self
                    .tools
                    .iter()
                    .filter(|t| !t.requires.is_empty() && t.requires.iter().all(|c| caps.contains(c)))
                    .map(|t| t.label())
                    .collect(),
            })
            .collect();
        PolicySummary {
            source: self.source_name.clone(),
            version: self.version.clone(),
            default_effect: self.default.as_str().to_string(),
            mode: format!("{:?}", self.mode).to_lowercase(),
            roles,
            principals: self
                .principals
                .iter()
                .map(|(id, p)| PrincipalSummary {
                    id: id.clone(),
                    roles: p.roles.clone(),
                })
                .collect(),
            tools,
            rules: self
                .rules
                .iter()
                .map(|r| RuleSummary {
                    id: r.id.clone(),
                    effect: r.effect.as_str().to_string(),
                    tools: r
                        .patterns
                        .iter()
                        .map(crate::glob::ToolPattern::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    reason: r.reason.clone(),
                    shadow: r.shadow,
                })
                .collect(),
            risk_effects: self
                .risk_effects
                .iter()
                .map(|(risk, effect)| (risk.as_str().to_string(), effect.as_str().to_string()))
                .collect(),
            approval_mode: self.approvals.mode.as_str().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    #[test]
    fn the_baseline_summarises() {
        let s = Policy::baseline().summary();
        assert_eq!(s.version, Policy::baseline().version());
        assert!(!s.risk_effects.is_empty());
        assert!(s.risk_effects.iter().any(|(r, _)| r == "CRITICAL"));
    }

    #[test]
    fn roles_list_the_tool_classes_they_may_call() {
        let p = Policy::from_yaml(
            r#"
version: 1
default: deny
roles:
  ops: [ssh-linux, remote-exec]
  viewer: [read]
tools:
  - match: "it-ops/ssh-exec"
    risk: HIGH
    requires: [ssh-linux, remote-exec]
"#,
            "t.yaml",
        )
        .unwrap();
        let s = p.summary();
        let ops = s.roles.iter().find(|r| r.name == "ops").unwrap();
        assert_eq!(ops.may_call, ["it-ops/ssh-exec"]);
        let viewer = s.roles.iter().find(|r| r.name == "viewer").unwrap();
        assert!(viewer.may_call.is_empty());
        assert_eq!(s.tools[0].requires, ["ssh-linux", "remote-exec"]);
    }
}
