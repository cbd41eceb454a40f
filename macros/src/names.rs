//! Wire names: the default spelling, and the names no method may take.

/// `make_counter` → `makeCounter`. Leading underscores are kept.
pub fn lower_camel(rust: &str) -> String {
    let rust = rust.strip_prefix("r#").unwrap_or(rust);
    let body = rust.trim_start_matches('_');
    let mut out = String::from(&rust[..rust.len() - body.len()]);
    let mut upper = false;
    for (i, c) in body.chars().enumerate() {
        if c == '_' {
            upper = i > 0;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Why a wire name cannot be used, if it cannot.
pub fn reserved(wire: &str) -> Option<&'static str> {
    match wire {
        "then" | "catch" | "finally" => Some(
            "it would make every stub look like a promise to JavaScript, which awaits anything with a `then`",
        ),
        "dup" | "map" | "onRpcBroken" => Some(
            "capnweb's stubs answer this name themselves, so a JavaScript caller could never reach it",
        ),
        "constructor"
        | "__proto__"
        | "toString"
        | "toLocaleString"
        | "toJSON"
        | "valueOf"
        | "hasOwnProperty"
        | "isPrototypeOf"
        | "propertyIsEnumerable"
        | "__defineGetter__"
        | "__defineSetter__"
        | "__lookupGetter__"
        | "__lookupSetter__" => {
            Some("every JavaScript object carries this name, and Cap'n Web never follows it")
        }
        _ if wire.starts_with("__capwire") => {
            Some("names starting with `__capwire` belong to generated code")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_camel_matches_javascript_spelling() {
        assert_eq!(lower_camel("make_counter"), "makeCounter");
        assert_eq!(lower_camel("square"), "square");
        assert_eq!(lower_camel("get_user_by_id"), "getUserById");
        assert_eq!(lower_camel("r#type"), "type");
        assert_eq!(lower_camel("_hidden_thing"), "_hiddenThing");
        assert_eq!(lower_camel("v2_api"), "v2Api");
    }
}
