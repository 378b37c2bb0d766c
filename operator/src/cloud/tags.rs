//! Tags both ways — the owner's map into each SDK's own tag type, and found tags back into a map —
//! and the ownership check every adapter makes on a resource it found by name.

use std::collections::BTreeMap;
use std::fmt::Display;

use super::{CloudError, CloudResult};
use crate::desired::Owner;

/// The tags in an SDK's own type; `make` builds one (`None` when that SDK's builder refuses it).
pub fn sdk_tags<T>(tags: &BTreeMap<String, String>, make: impl Fn(&str, &str) -> Option<T>) -> Vec<T> {
    tags.iter().filter_map(|(key, value)| make(key, value)).collect()
}

/// Found tags as a map, from any SDK's key/value pairs (pairs missing either side are skipped).
pub fn tag_map<'a>(pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> BTreeMap<String, String> {
    pairs.into_iter().filter_map(|(key, value)| Some((key?.to_owned(), value?.to_owned()))).collect()
}

/// Found tags as a listing keeps them for every object until the next: a list without spare room
/// (a map's node takes room for eleven pairs, and most resources carry three or four).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagList(Box<[(Box<str>, Box<str>)]>);

impl TagList {
    /// The value of `key`, if tagged.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| &**k == key).map(|(_, v)| &**v)
    }

    /// Whether these are `owner`'s ownership tags.
    pub fn owned_by(&self, owner: &Owner) -> bool {
        owner.owns(&self.to_map())
    }

    /// As the map the rest of the adapter compares.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for TagList {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.as_ref().into(), v.as_ref().into())).collect())
    }
}

/// Ok when the tags found on a resource say `owner` made it; otherwise the refusal a person can act
/// on (`what` names the resource, e.g. "IAM role x"). Never adopt, change or delete what is not ours.
///
/// # Errors
/// `Invalid`: the name is held by a resource without this owner's tags.
pub fn claim(
    owner: &Owner,
    found: &BTreeMap<String, String>,
    service: &'static str,
    operation: &'static str,
    what: impl Display,
) -> CloudResult<()> {
    if owner.owns(found) { Ok(()) } else { Err(CloudError::not_owned(service, operation, what)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_list_answers_as_the_map_it_came_from() {
        let owner = Owner { namespace: "n".into(), name: "b".into(), uid: "u1".into() };
        let theirs = Owner { uid: "u2".into(), ..owner.clone() };
        let mut tags = owner.tags();
        tags.insert("cost".into(), "7".into());
        let list: TagList = tags.iter().collect();
        assert_eq!(list.get("cost"), Some("7"));
        assert_eq!(list.get("missing"), None);
        assert!(list.owned_by(&owner));
        assert!(!list.owned_by(&theirs));
        assert_eq!(list.to_map(), tags);
    }

    #[test]
    fn only_the_owners_own_tags_pass() {
        let owner = Owner { namespace: "n".into(), name: "b".into(), uid: "u1".into() };
        let theirs = Owner { uid: "u2".into(), ..owner.clone() };
        assert!(claim(&owner, &owner.tags(), "iam", "GetRole", "IAM role r").is_ok());
        let refused = claim(&owner, &theirs.tags(), "iam", "GetRole", "IAM role r").expect_err("not ours");
        assert_eq!(refused.message, "IAM role r exists but is not tagged as this BlogDeployment's");
        let pairs = [(Some("a"), Some("1")), (None, Some("2")), (Some("c"), None)];
        assert_eq!(tag_map(pairs), BTreeMap::from([("a".to_owned(), "1".to_owned())]));
        assert_eq!(sdk_tags(&owner.tags(), |k, v| Some(format!("{k}={v}"))).len(), 3);
    }
}
