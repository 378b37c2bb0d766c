//! Kubernetes Events of the operator's objects, a repeat folded into a count on the first Event as
//! kube's recorder does, keeping of each recent Event only its name and count (kube's recorder
//! keeps the whole Event, about 5 KiB an object at 300 objects, for six minutes after each).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

/// How long a repeat still counts on the first Event (kube's and client-go's six minutes).
const FOLD_FOR: Duration = Duration::from_secs(6 * 60);

/// What publishing an Event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// A new Event of this name.
    Create { name: String },
    /// The repeat of the Event of this name: its series count becomes `count`.
    Count { name: String, count: i32 },
}

/// The recent Events by what they are about (object, type, reason, action): their name, count
/// and when last seen. Pure: the clock is passed in.
#[derive(Default)]
pub struct Folds {
    recent: HashMap<u64, (Box<str>, i32, Instant)>,
}

impl Folds {
    /// What to publish for an Event with fold key `key` and fresh name `name`, at `now`.
    pub fn next(&mut self, key: u64, name: impl FnOnce() -> String, now: Instant) -> Publish {
        self.recent.retain(|_, (_, _, last)| now.duration_since(*last) < FOLD_FOR);
        if self.recent.capacity() > 64 && self.recent.len() < self.recent.capacity() / 4 {
            // A burst of creates leaves a large table behind; hand its memory back.
            self.recent.shrink_to_fit();
        }
        match self.recent.get_mut(&key) {
            Some((name, count, last)) => {
                (*count, *last) = (*count + 1, now);
                Publish::Count { name: name.to_string(), count: *count }
            }
            None => {
                let name = name();
                self.recent.insert(key, (name.clone().into_boxed_str(), 1, now));
                Publish::Create { name }
            }
        }
    }

    /// How many recent Events are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

/// Publishes Events as `controller` (and `instance`, the pod), folding repeats.
pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    folds: std::sync::Mutex<Folds>,
}

impl Recorder {
    #[must_use]
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        let instance = instance.unwrap_or_else(|| controller.to_owned());
        Self { client, controller: controller.to_owned(), instance, folds: std::sync::Mutex::default() }
    }

    /// Publishes `ev` on `regarding`; `fold` counts a repeat of its type, reason and action on
    /// the first Event, where a repeat whose note is news must stay an Event of its own.
    ///
    /// # Errors
    /// The apiserver refused the Event.
    pub async fn publish(&self, ev: &Event, regarding: &ObjectReference, fold: bool) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let fresh_name =
            || format!("{}.{:x}", regarding.name.as_deref().unwrap_or(&self.controller), now.as_nanosecond());
        let publish = if fold {
            let key = fold_key(ev, regarding);
            self.folds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next(key, fresh_name, Instant::now())
        } else {
            Publish::Create { name: fresh_name() }
        };
        let events: Api<K8sEvent> =
            Api::namespaced(self.client.clone(), regarding.namespace.as_deref().unwrap_or("default"));
        match publish {
            Publish::Create { name } => {
                events.create(&PostParams::default(), &self.event(ev, regarding, name, now)).await?;
            }
            Publish::Count { name, count } => {
                let series = serde_json::json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
                events.patch(&name, &PatchParams::default(), &Patch::Merge(series)).await?;
            }
        }
        Ok(())
    }

    fn event(&self, ev: &Event, regarding: &ObjectReference, name: String, now: Timestamp) -> K8sEvent {
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            metadata: ObjectMeta { namespace: regarding.namespace.clone(), name: Some(name), ..ObjectMeta::default() },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(match ev.type_ {
                EventType::Normal => "Normal".to_owned(),
                EventType::Warning => "Warning".to_owned(),
            }),
            ..K8sEvent::default()
        }
    }
}

/// What makes two Events the same for folding: the object (by uid, or kind, namespace and name),
/// the type, reason and action (kube's recorder and client-go leave the note out too).
fn fold_key(ev: &Event, regarding: &ObjectReference) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    (&regarding.uid, &regarding.kind, &regarding.namespace, &regarding.name).hash(&mut hasher);
    (matches!(ev.type_, EventType::Warning), &ev.reason, &ev.action).hash(&mut hasher);
    ev.secondary.as_ref().map(|s| (&s.uid, &s.kind, &s.name)).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_six_minutes_counts_on_the_first_event_and_a_later_one_is_new() {
        let mut folds = Folds::default();
        let t0 = Instant::now();
        assert_eq!(folds.next(1, || "a.1".into(), t0), Publish::Create { name: "a.1".into() });
        let repeat = folds.next(1, || "a.2".into(), t0 + Duration::from_secs(60));
        assert_eq!(repeat, Publish::Count { name: "a.1".into(), count: 2 });
        assert_eq!(
            folds.next(2, || "b.1".into(), t0 + Duration::from_secs(61)),
            Publish::Create { name: "b.1".into() }
        );
        // Six minutes after its last repeat, the same Event is a new one.
        let later = folds.next(1, || "a.3".into(), t0 + Duration::from_secs(60) + FOLD_FOR);
        assert_eq!(later, Publish::Create { name: "a.3".into() });
    }

    #[test]
    fn past_events_are_dropped_and_their_memory_handed_back() {
        let mut folds = Folds::default();
        let t0 = Instant::now();
        for key in 0..10_000 {
            folds.next(key, || format!("b{key}.1"), t0);
        }
        let burst = folds.recent.capacity();
        folds.next(10_000, || "late.1".into(), t0 + FOLD_FOR);
        assert_eq!(folds.len(), 1, "only the new one");
        assert!(folds.recent.capacity() < burst / 100, "{} of {burst} kept", folds.recent.capacity());
    }

    #[test]
    fn events_differing_in_reason_or_object_are_not_folded() {
        let ev = |reason: &str| Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            note: Some("n".into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let object =
            |uid: &str| ObjectReference { uid: Some(uid.into()), name: Some("a".into()), ..Default::default() };
        let mut other_note = ev("Ready");
        other_note.note = Some("another".into());
        assert_eq!(fold_key(&ev("Ready"), &object("1")), fold_key(&other_note, &object("1")));
        assert_ne!(fold_key(&ev("Ready"), &object("1")), fold_key(&ev("Failed"), &object("1")));
        assert_ne!(fold_key(&ev("Ready"), &object("1")), fold_key(&ev("Ready"), &object("2")));
    }
}
