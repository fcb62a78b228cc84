//! The governed tool methods: reading `tools/call` params, answering a refused call, and
//! filtering `tools/list` results.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::era::Era;
use crate::jsonrpc::result_response;

/// `_meta` key under which Steward puts its decision id on results it writes.
pub const META_DECISION_ID: &str = "steward/decisionId";

/// The params of a `tools/call` request.
#[derive(Debug, Clone, Deserialize)]
pub struct CallParams {
    pub name: String,
    #[serde(default)]
    pub arguments: Option<Value>,
}

impl CallParams {
    pub fn parse(params: Option<&RawValue>) -> Result<CallParams, String> {
        let raw = params.ok_or_else(|| "tools/call needs params with a \"name\"".to_string())?;
        let p: CallParams = serde_json::from_str(raw.get()).map_err(|e| format!("invalid tools/call params: {e}"))?;
        if let Some(args) = &p.arguments
            && !args.is_object()
        {
            return Err("tools/call \"arguments\" must be an object".into());
        }
        Ok(p)
    }

    /// The arguments, `{}` when absent.
    pub fn args(&self) -> Value {
        self.arguments
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// What a governed use (`tools/call`, `resources/read`, `prompts/get`) names and passes: the
/// target (tool name, resource URI, prompt name) and the arguments (`{}` for a resource).
#[derive(Debug, Clone, PartialEq)]
pub struct UseParams {
    pub target: String,
    pub args: Value,
}

impl UseParams {
    /// Reads a use's params strictly: bounded depth, no duplicate keys anywhere (a peer that keeps
    /// the first of two values must never run a value the policy did not see).
    pub fn parse(method: crate::Method, params: Option<&RawValue>) -> Result<UseParams, String> {
        let member = method
            .target_member()
            .ok_or_else(|| format!("{method} is not a use of a tool, resource or prompt"))?;
        let raw = params.ok_or_else(|| format!("{method} needs params with \"{member}\""))?;
        let mut value =
            crate::json::parse_strict(raw.get().as_bytes()).map_err(|e| format!("invalid {method} params: {e}"))?;
        let obj = value
            .as_object_mut()
            .ok_or_else(|| format!("{method} params must be an object"))?;
        let target = match obj.get(member) {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(format!("{method} params need a string \"{member}\"")),
        };
        let args = match method {
            crate::Method::ResourcesRead => Value::Object(Default::default()),
            _ => match obj.remove("arguments") {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(v @ Value::Object(_)) => v,
                Some(_) => return Err(format!("{method} \"arguments\" must be an object")),
            },
        };
        Ok(UseParams { target, args })
    }
}

/// A tool as `tools/list` described it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedTool {
    pub name: String,
    pub annotations: Option<Value>,
}

/// A `tools/call` result that tells the model a call was refused, and why.
pub fn refusal_result(id: &str, text: &str, decision_id: &str, era: Era) -> Vec<u8> {
    let mut result = json!({
        "content": [{ "type": "text", "text": text }],
        "isError": true,
        "_meta": { META_DECISION_ID: decision_id },
    });
    if era == Era::Stateless {
        result["resultType"] = json!("complete");
    }
    result_response(id, &result)
}

/// Reads the tools of a `tools/list` response line and drops those `keep` refuses.
/// Returns the tools listed, and the rewritten line when anything was dropped (`None` means
/// forward the original bytes unchanged).
pub fn filter_tools_list(
    line: &[u8],
    mut keep: impl FnMut(&ListedTool) -> bool,
) -> Result<(Vec<ListedTool>, Option<Vec<u8>>), String> {
    let mut msg: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let Some(tools) = msg
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return Ok((Vec::new(), None));
    };
    let mut listed = Vec::with_capacity(tools.len());
    let before = tools.len();
    tools.retain(|t| {
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            // A tool without a name cannot be governed: leave it out.
            return false;
        };
        let tool = ListedTool {
            name: name.to_string(),
            annotations: t.get("annotations").cloned(),
        };
        let kept = keep(&tool);
        listed.push(tool);
        kept
    });
    if tools.len() == before {
        return Ok((listed, None));
    }
    Ok((listed, Some(serde_json::to_vec(&msg).map_err(|e| e.to_string())?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_tools_and_keeps_everything_else() {
        let line = br#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"echo","x-extra":1},{"name":"rm","annotations":{"destructiveHint":true}}],"nextCursor":"c","_meta":{"k":"v"}}}"#;
        let (listed, rewritten) = filter_tools_list(line, |t| t.name != "rm").unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].annotations, Some(json!({"destructiveHint": true})));
        let out = String::from_utf8(rewritten.unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"echo","x-extra":1}],"nextCursor":"c","_meta":{"k":"v"}}}"#
        );
        let (_, untouched) = filter_tools_list(line, |_| true).unwrap();
        assert!(untouched.is_none());
    }

    #[test]
    fn use_params_are_strict() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let p = UseParams::parse(
            crate::Method::ToolsCall,
            Some(&raw(r#"{"name":"x","arguments":{"a":1}}"#)),
        )
        .unwrap();
        assert_eq!((p.target.as_str(), p.args["a"].clone()), ("x", json!(1)));
        let r = UseParams::parse(crate::Method::ResourcesRead, Some(&raw(r#"{"uri":"file:///a"}"#))).unwrap();
        assert_eq!(r.target, "file:///a");
        let dup = raw(r#"{"name":"x","arguments":{"cmd":"ls","cmd":"rm -rf /"}}"#);
        assert!(
            UseParams::parse(crate::Method::ToolsCall, Some(&dup))
                .unwrap_err()
                .contains("duplicate key")
        );
        assert!(UseParams::parse(crate::Method::PromptsGet, Some(&raw(r#"{"name":5}"#))).is_err());
        assert!(UseParams::parse(crate::Method::ToolsCall, Some(&raw(r#"{"name":"x","arguments":[]}"#))).is_err());
    }

    #[test]
    fn refusal_is_a_tool_error() {
        let r: Value = serde_json::from_slice(&refusal_result("5", "denied", "d-1", Era::Stateless)).unwrap();
        assert_eq!(r["id"], 5);
        assert_eq!(r["result"]["isError"], true);
        assert_eq!(r["result"]["resultType"], "complete");
        assert_eq!(r["result"]["_meta"][META_DECISION_ID], "d-1");
    }
}
