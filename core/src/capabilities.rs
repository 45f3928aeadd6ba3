//! Capabilities: named permissions that imply one another, resolved once.
//!
//! A [`CapabilitiesConfig`] declares a graph in which each capability lists
//! the capabilities it implies (the same shape as easy-oauth's `capabilities`
//! block). [`CapabilityGraph::new`] checks it and computes, once, the
//! transitive closure of every capability as a [`CapSet`] bitset. Afterwards,
//! "does this caller hold `X`" is a single bit test on a set built with
//! [`CapabilityGraph::expand`].
//!
//! ```
//! use portcullis_core::capabilities::{CapabilitiesConfig, CapabilityGraph};
//! use portcullis_core::config::{load_from_str, Format};
//!
//! let yaml = r#"
//! graph:
//!   read: []
//!   write: [read]
//!   moderate: [read, write]
//!   announce: [read, write]
//!   user_management: []
//! auto_admin: true
//! default_capabilities: [read]
//! "#;
//! let config: CapabilitiesConfig = load_from_str(yaml, Format::Yaml, &[])?;
//! let graph = CapabilityGraph::new(&config)?;
//!
//! // A user whose store entry lists `moderate` (and a name the graph dropped).
//! let caller = graph.expand(["moderate", "retired"]);
//! assert_eq!(caller.unknown, ["retired"]);
//! let write = graph.id("write").unwrap();
//! let announce = graph.id("announce").unwrap();
//! assert!(caller.set.contains(write));
//! assert!(!caller.set.contains(announce));
//! assert_eq!(graph.names_of(&caller.set), ["moderate", "read", "write"]);
//!
//! // `admin` implies every other capability.
//! let admin = graph.closure(graph.admin().unwrap());
//! assert!(admin.contains(graph.user_management().unwrap()));
//! # Ok::<(), portcullis_core::Error>(())
//! ```
//!
//! Configuration mistakes are refused when the graph is built, with the key
//! that holds them: an implied capability that is not declared, a default or
//! guest capability that is not declared, an `admin` entry while `auto_admin`
//! is on, or more than [`MAX_CAPABILITIES`] capabilities.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The largest number of capabilities a graph may declare (`admin` included).
pub const MAX_CAPABILITIES: usize = WORDS * 64;

/// Number of 64-bit words in a [`CapSet`].
const WORDS: usize = 4;

/// The name of the capability `auto_admin` adds.
const ADMIN: &str = "admin";

/// The name of the capability that allows managing other users' capabilities.
const USER_MANAGEMENT: &str = "user_management";

/// How capabilities are declared: what implies what, and who gets what without asking.
///
/// Accepts easy-oauth's `capabilities` block as is:
///
/// ```yaml
/// graph:
///   read: []
///   write: [read]
/// auto_admin: true
/// user_file: caps.yaml
/// default_capabilities: [read]
/// guest_capabilities: []
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CapabilitiesConfig {
    /// Every capability, with the capabilities it implies.
    #[serde(default)]
    pub graph: BTreeMap<String, Vec<String>>,
    /// Adds an `admin` capability that implies every other one (default false).
    #[serde(default)]
    pub auto_admin: bool,
    /// The file that holds each user's capabilities. A relative path read
    /// from a configuration file by [`load_file`](crate::config::load_file)
    /// is taken beside that file, as easy-oauth does.
    #[serde(default)]
    pub user_file: Option<PathBuf>,
    /// Capabilities pinned to users by the configuration (easy-oauth's
    /// `user_overrides`: `{"alice@example.com": [admin]}`). They add to what
    /// the store holds for the user, are never written to the store (so a
    /// management `remove` or `set` cannot take them away), and the
    /// management routes report them.
    #[serde(default)]
    pub user_overrides: BTreeMap<String, Vec<String>>,
    /// Capabilities given to every authenticated user.
    #[serde(default)]
    pub default_capabilities: Vec<String>,
    /// Capabilities given to unauthenticated callers.
    #[serde(default)]
    pub guest_capabilities: Vec<String>,
}

impl CapabilitiesConfig {
    /// A configuration declaring `graph`: pairs of a capability and the
    /// capabilities it implies. Everything else is at its default.
    pub fn new<N, I>(graph: impl IntoIterator<Item = (N, I)>) -> Self
    where
        N: Into<String>,
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self {
            graph: graph
                .into_iter()
                .map(|(name, implies)| (name.into(), implies.into_iter().map(Into::into).collect()))
                .collect(),
            ..Self::default()
        }
    }

    /// Declares `name`, implying `implies` (replacing an earlier declaration of `name`).
    pub fn with_capability(
        mut self,
        name: impl Into<String>,
        implies: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.graph
            .insert(name.into(), implies.into_iter().map(Into::into).collect());
        self
    }

    /// Sets whether an `admin` capability implying every other one is added.
    pub fn with_auto_admin(mut self, auto_admin: bool) -> Self {
        self.auto_admin = auto_admin;
        self
    }

    /// Sets the file that holds each user's capabilities.
    pub fn with_user_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.user_file = Some(path.into());
        self
    }

    /// Pins `capabilities` to `user` (see [`user_overrides`](Self::user_overrides)).
    pub fn with_user_override(
        mut self,
        user: impl Into<String>,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.user_overrides.insert(
            user.into(),
            capabilities.into_iter().map(Into::into).collect(),
        );
        self
    }

    /// Sets the capabilities given to every authenticated user.
    pub fn with_default_capabilities(
        mut self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.default_capabilities = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the capabilities given to unauthenticated callers.
    pub fn with_guest_capabilities(
        mut self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.guest_capabilities = names.into_iter().map(Into::into).collect();
        self
    }
}

/// The dense id of a capability in one [`CapabilityGraph`].
///
/// Ids are given in the sorted order of the capability names, from 0. They
/// are only meaningful for the graph that gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapId(u16);

impl CapId {
    /// The id as an index (0 ≤ index < [`MAX_CAPABILITIES`]).
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id at `index`, when `index` is below [`MAX_CAPABILITIES`].
    const fn from_index(index: usize) -> Option<Self> {
        if index < MAX_CAPABILITIES {
            Some(Self(index as u16))
        } else {
            None
        }
    }
}

/// A set of capabilities: a fixed-size bitset indexed by [`CapId`].
///
/// Sets are small (32 bytes), `Copy`, and every operation is a few word
/// operations; [`contains`](CapSet::contains) is one bounds-checked bit test.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet {
    words: [u64; WORDS],
}

impl CapSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self { words: [0; WORDS] }
    }

    /// Whether `id` is in the set.
    #[inline]
    pub fn contains(&self, id: CapId) -> bool {
        let i = id.index();
        self.words
            .get(i / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    /// Adds `id`; returns whether it was absent.
    #[inline]
    pub fn insert(&mut self, id: CapId) -> bool {
        let i = id.index();
        match self.words.get_mut(i / 64) {
            Some(word) => {
                let bit = 1 << (i % 64);
                let absent = *word & bit == 0;
                *word |= bit;
                absent
            }
            None => false,
        }
    }

    /// Removes `id`; returns whether it was present.
    #[inline]
    pub fn remove(&mut self, id: CapId) -> bool {
        let i = id.index();
        match self.words.get_mut(i / 64) {
            Some(word) => {
                let bit = 1 << (i % 64);
                let present = *word & bit != 0;
                *word &= !bit;
                present
            }
            None => false,
        }
    }

    /// The capabilities in either set.
    #[must_use]
    pub fn union(&self, other: &CapSet) -> CapSet {
        let mut out = *self;
        out.union_with(other);
        out
    }

    /// Adds every capability of `other` to this set.
    pub fn union_with(&mut self, other: &CapSet) {
        for (a, b) in self.words.iter_mut().zip(other.words) {
            *a |= b;
        }
    }

    /// The capabilities in both sets.
    #[must_use]
    pub fn intersection(&self, other: &CapSet) -> CapSet {
        let mut out = *self;
        for (a, b) in out.words.iter_mut().zip(other.words) {
            *a &= b;
        }
        out
    }

    /// Whether every capability of this set is in `other`.
    pub fn is_subset(&self, other: &CapSet) -> bool {
        self.words.iter().zip(other.words).all(|(a, b)| a & !b == 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The number of capabilities in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The capabilities in the set, in increasing id order (which is the
    /// sorted order of their names).
    pub fn iter(&self) -> impl Iterator<Item = CapId> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                CapId::from_index(w * 64 + bit)
            })
        })
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(CapId::index))
            .finish()
    }
}

impl FromIterator<CapId> for CapSet {
    fn from_iter<T: IntoIterator<Item = CapId>>(iter: T) -> Self {
        let mut set = CapSet::new();
        set.extend(iter);
        set
    }
}

impl Extend<CapId> for CapSet {
    fn extend<T: IntoIterator<Item = CapId>>(&mut self, iter: T) {
        for id in iter {
            self.insert(id);
        }
    }
}

/// What [`CapabilityGraph::expand`] made of a list of names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The union of the closures of the declared names.
    pub set: CapSet,
    /// The names the graph does not declare, in the order first met, without repeats.
    pub unknown: Vec<String>,
}

/// A checked capability graph with the closure of every capability computed.
///
/// Built once from a [`CapabilitiesConfig`]; every query afterwards is a
/// lookup. The closure of a capability holds the capability itself and
/// everything it implies, directly or not. Cycles are allowed: in
/// `a -> b -> a`, `a` and `b` imply each other.
#[derive(Clone)]
pub struct CapabilityGraph {
    /// Declared names, sorted; a name's position is its id.
    names: Vec<Box<str>>,
    /// The closure of each capability, by id.
    closures: Vec<CapSet>,
    defaults: CapSet,
    guests: CapSet,
    /// `user_overrides`: each user's pinned names and their closure.
    overrides: BTreeMap<String, (Vec<String>, CapSet)>,
    admin: Option<CapId>,
    user_management: Option<CapId>,
}

impl fmt::Debug for CapabilityGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, closure) in self.names.iter().zip(&self.closures) {
            map.entry(name, &self.names_of(closure));
        }
        map.finish()
    }
}

impl CapabilityGraph {
    /// Checks `config` and computes the closure of every capability.
    ///
    /// # Errors
    ///
    /// A configuration error ([`ErrorKind::Config`](crate::ErrorKind::Config))
    /// naming the key when a capability implies one that is not declared, a
    /// default or guest capability is not declared, `admin` is declared while
    /// `auto_admin` is on, a name is empty, or more than [`MAX_CAPABILITIES`]
    /// capabilities would exist.
    pub fn new(config: &CapabilitiesConfig) -> Result<Self, Error> {
        if config.auto_admin && config.graph.contains_key(ADMIN) {
            return Err(Error::config(format!(
                "configuration key `capabilities.graph.{ADMIN}`: `{ADMIN}` is added by \
                 `capabilities.auto_admin`; remove it from the graph or set `auto_admin` to false"
            )));
        }
        if config.graph.contains_key("") {
            return Err(Error::config(
                "configuration key `capabilities.graph`: a capability name is empty",
            ));
        }
        let count = config.graph.len() + usize::from(config.auto_admin);
        if count > MAX_CAPABILITIES {
            return Err(Error::config(format!(
                "configuration key `capabilities.graph`: {count} capabilities are declared, \
                 at most {MAX_CAPABILITIES} are supported"
            )));
        }

        let mut names: Vec<Box<str>> = config.graph.keys().map(|n| n.as_str().into()).collect();
        if config.auto_admin {
            names.push(ADMIN.into());
        }
        names.sort_unstable();
        let lookup = |name: &str| -> Option<CapId> {
            names
                .binary_search_by(|n| (**n).cmp(name))
                .ok()
                .and_then(CapId::from_index)
        };

        // Direct implications, by id.
        let mut direct: Vec<Vec<CapId>> = vec![Vec::new(); names.len()];
        for (name, implies) in &config.graph {
            let from = lookup(name).expect("declared");
            for implied in implies {
                let to = lookup(implied).ok_or_else(|| {
                    Error::config(format!(
                        "configuration key `capabilities.graph.{name}`: implies `{implied}`, \
                         which is not declared"
                    ))
                })?;
                direct[from.index()].push(to);
            }
        }
        let admin = if config.auto_admin {
            let admin = lookup(ADMIN).expect("added");
            direct[admin.index()] = (0..names.len()).filter_map(CapId::from_index).collect();
            Some(admin)
        } else {
            lookup(ADMIN)
        };

        // Transitive closure: a traversal from every capability. At most 256
        // nodes, done once.
        let mut closures = Vec::with_capacity(names.len());
        let mut stack = Vec::new();
        for start in (0..names.len()).filter_map(CapId::from_index) {
            let mut seen = CapSet::new();
            seen.insert(start);
            stack.push(start);
            while let Some(id) = stack.pop() {
                for &next in &direct[id.index()] {
                    if seen.insert(next) {
                        stack.push(next);
                    }
                }
            }
            closures.push(seen);
        }

        let mut graph = Self {
            user_management: lookup(USER_MANAGEMENT),
            names,
            closures,
            defaults: CapSet::new(),
            guests: CapSet::new(),
            overrides: BTreeMap::new(),
            admin,
        };
        graph.defaults = graph.declared_closure(
            &config.default_capabilities,
            "capabilities.default_capabilities",
        )?;
        graph.guests = graph.declared_closure(
            &config.guest_capabilities,
            "capabilities.guest_capabilities",
        )?;
        for (user, names) in &config.user_overrides {
            if user.is_empty() {
                return Err(Error::config(
                    "configuration key `capabilities.user_overrides`: a user is empty",
                ));
            }
            let set = graph.declared_closure(names, "capabilities.user_overrides")?;
            let mut names = names.clone();
            names.sort_unstable();
            names.dedup();
            graph.overrides.insert(user.clone(), (names, set));
        }
        Ok(graph)
    }

    /// The capabilities `user_overrides` pins to `user`: the names as
    /// configured (sorted) and their closure; `None` for a user without any.
    pub fn pinned(&self, user: &str) -> Option<(&[String], &CapSet)> {
        self.overrides
            .get(user)
            .map(|(names, set)| (names.as_slice(), set))
    }

    /// The union of the closures of `names`, refusing undeclared names as a
    /// configuration error at `key`.
    fn declared_closure(&self, names: &[String], key: &str) -> Result<CapSet, Error> {
        let mut set = CapSet::new();
        for name in names {
            let id = self.id(name).ok_or_else(|| {
                Error::config(format!(
                    "configuration key `{key}`: `{name}` is not declared in `capabilities.graph`"
                ))
            })?;
            set.union_with(&self.closures[id.index()]);
        }
        Ok(set)
    }

    /// The number of capabilities (`admin` included when added).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the graph declares no capability.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The id of the capability `name`, if declared.
    pub fn id(&self, name: &str) -> Option<CapId> {
        self.names
            .binary_search_by(|n| (**n).cmp(name))
            .ok()
            .and_then(CapId::from_index)
    }

    /// Whether the graph declares `name`.
    pub fn has(&self, name: &str) -> bool {
        self.id(name).is_some()
    }

    /// The capabilities the program's guards name (every
    /// [`capability!`](crate::capability) declaration linked into it) that
    /// this graph does not declare, sorted by name: a route requiring one
    /// answers 500 to everyone. Adapters log each at start-up; a service
    /// that wants to refuse to start can check that this is empty.
    ///
    /// A program that serves several graphs (one per application) sees the
    /// names of all its applications here.
    pub fn unknown_guards(&self) -> Vec<&'static crate::guard::DeclaredCapability> {
        let mut unknown: Vec<_> = crate::guard::declared_capabilities()
            .filter(|d| !self.has(d.name))
            .collect();
        unknown.sort_by_key(|d| (d.name, d.module));
        unknown.dedup();
        unknown
    }

    /// The name of the capability `id`.
    ///
    /// # Panics
    ///
    /// When `id` does not come from this graph and is out of its range.
    pub fn name(&self, id: CapId) -> &str {
        &self.names[id.index()]
    }

    /// The declared capabilities, sorted (in id order).
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.iter().map(|n| &**n)
    }

    /// The capability `id` and everything it implies, directly or not.
    ///
    /// # Panics
    ///
    /// When `id` does not come from this graph and is out of its range.
    pub fn closure(&self, id: CapId) -> &CapSet {
        &self.closures[id.index()]
    }

    /// The union of the closures of the capabilities in `set`: `set` with
    /// everything it implies. Ids out of this graph's range are dropped.
    pub fn closure_of(&self, set: &CapSet) -> CapSet {
        let mut out = CapSet::new();
        for id in set.iter() {
            if let Some(closure) = self.closures.get(id.index()) {
                out.union_with(closure);
            }
        }
        out
    }

    /// The capabilities `names` give: the union of their closures.
    ///
    /// Names the graph does not declare (a store may hold names the graph no
    /// longer declares) are left out of the set and listed in
    /// [`Expanded::unknown`], for the caller to log.
    pub fn expand<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Expanded {
        let mut out = Expanded::default();
        for name in names {
            match self.id(name) {
                Some(id) => out.set.union_with(&self.closures[id.index()]),
                None => {
                    if !out.unknown.iter().any(|u| u == name) {
                        out.unknown.push(name.to_owned());
                    }
                }
            }
        }
        out
    }

    /// The names of the capabilities in `set`, sorted. Ids out of this graph's
    /// range are skipped.
    pub fn names_of(&self, set: &CapSet) -> Vec<String> {
        set.iter()
            .filter_map(|id| self.names.get(id.index()))
            .map(|n| String::from(&**n))
            .collect()
    }

    /// What every authenticated user holds: the closure of `default_capabilities`.
    pub fn defaults(&self) -> &CapSet {
        &self.defaults
    }

    /// What unauthenticated callers hold: the closure of `guest_capabilities`.
    pub fn guests(&self) -> &CapSet {
        &self.guests
    }

    /// The `user_management` capability, when the graph declares it.
    pub fn user_management(&self) -> Option<CapId> {
        self.user_management
    }

    /// The `admin` capability, when the graph declares it or `auto_admin` added it.
    pub fn admin(&self) -> Option<CapId> {
        self.admin
    }

    /// Whether a manager holding `manager` may grant `requested`: a manager
    /// grants only what it holds itself.
    ///
    /// `manager` is taken with everything it implies (so `admin` holds every
    /// capability), and `requested` must be a subset of that. Whether the
    /// manager may manage capabilities at all (`user_management`) is a
    /// separate check.
    pub fn can_grant(&self, manager: &CapSet, requested: &CapSet) -> bool {
        requested.is_subset(&self.closure_of(manager))
    }

    /// The set of exactly the capabilities `names` (without what they imply),
    /// refusing names the graph does not declare.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) (400)
    /// naming the first undeclared name: ``unknown capability `x` ``.
    pub fn resolve_declared(&self, names: &[String]) -> Result<CapSet, Error> {
        let mut set = CapSet::new();
        for name in names {
            let id = self
                .id(name)
                .ok_or_else(|| Error::invalid_request(format!("unknown capability `{name}`")))?;
            set.insert(id);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, load_from_str};
    use crate::error::ErrorKind;

    /// easy-oauth's README configuration, `capabilities` block.
    const EASY_OAUTH_YAML: &str = "\
graph:
  read: []
  write: [read]
  moderate: [read, write]
  announce: [read, write]
  user_management: []
auto_admin: true
user_file: caps.yaml
default_capabilities: [read]
guest_capabilities: []
";

    fn readme_graph() -> CapabilityGraph {
        let config: CapabilitiesConfig = load_from_str(EASY_OAUTH_YAML, Format::Yaml, &[]).unwrap();
        CapabilityGraph::new(&config).unwrap()
    }

    crate::capability!(
        #[allow(dead_code, reason = "declared to be listed, never required")]
        Moderate = "moderate"
    );
    crate::capability!(
        #[allow(dead_code, reason = "declared to be listed, never required")]
        NotInTheGraph = "not-in-the-readme-graph"
    );

    #[test]
    fn guards_naming_a_capability_the_graph_lacks_are_found() {
        let declared: Vec<&str> = crate::guard::declared_capabilities()
            .map(|d| d.name)
            .collect();
        assert!(declared.contains(&"moderate"), "{declared:?}");
        let unknown = readme_graph().unknown_guards();
        let names: Vec<&str> = unknown.iter().map(|d| d.name).collect();
        assert!(names.contains(&"not-in-the-readme-graph"), "{names:?}");
        assert!(!names.contains(&"moderate"), "{names:?}");
        let here = unknown
            .iter()
            .find(|d| d.name == "not-in-the-readme-graph")
            .unwrap();
        assert!(here.module.ends_with("capabilities::tests"), "{here:?}");
    }

    fn closure_names(g: &CapabilityGraph, name: &str) -> Vec<String> {
        g.names_of(g.closure(g.id(name).unwrap()))
    }

    fn config_error(config: &CapabilitiesConfig) -> String {
        let e = CapabilityGraph::new(config).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{}", e.message());
        e.message().to_owned()
    }

    #[test]
    fn easy_oauth_yaml_deserializes() {
        let config: CapabilitiesConfig = load_from_str(EASY_OAUTH_YAML, Format::Yaml, &[]).unwrap();
        let expected = CapabilitiesConfig::new([
            ("read", vec![]),
            ("write", vec!["read"]),
            ("moderate", vec!["read", "write"]),
            ("announce", vec!["read", "write"]),
            ("user_management", vec![]),
        ])
        .with_auto_admin(true)
        .with_user_file("caps.yaml")
        .with_default_capabilities(["read"])
        .with_guest_capabilities(Vec::<String>::new());
        assert_eq!(config, expected);

        let empty: CapabilitiesConfig = load_from_str("", Format::Yaml, &[]).unwrap();
        assert_eq!(empty, CapabilitiesConfig::default());
        assert!(!empty.auto_admin);

        let e =
            load_from_str::<CapabilitiesConfig>("graph: {}\nautoadmin: true\n", Format::Yaml, &[])
                .unwrap_err();
        assert!(e.message().contains("autoadmin"), "{}", e.message());
    }

    #[test]
    fn readme_graph_closures() {
        let g = readme_graph();
        assert_eq!(
            g.names().collect::<Vec<_>>(),
            [
                "admin",
                "announce",
                "moderate",
                "read",
                "user_management",
                "write"
            ]
        );
        assert_eq!(g.len(), 6);
        assert_eq!(closure_names(&g, "read"), ["read"]);
        assert_eq!(closure_names(&g, "write"), ["read", "write"]);
        assert_eq!(closure_names(&g, "moderate"), ["moderate", "read", "write"]);
        assert_eq!(closure_names(&g, "announce"), ["announce", "read", "write"]);
        assert_eq!(closure_names(&g, "user_management"), ["user_management"]);
        let moderate = g.closure(g.id("moderate").unwrap());
        assert!(!moderate.contains(g.id("announce").unwrap()));
        assert!(!moderate.contains(g.id("user_management").unwrap()));

        let admin = g.admin().unwrap();
        assert_eq!(g.name(admin), "admin");
        assert_eq!(
            closure_names(&g, "admin"),
            [
                "admin",
                "announce",
                "moderate",
                "read",
                "user_management",
                "write"
            ]
        );
        assert!(g.closure(admin).contains(g.user_management().unwrap()));
        assert_eq!(g.names_of(g.defaults()), ["read"]);
        assert!(g.guests().is_empty());
        assert!(g.has("moderate") && !g.has("Moderate") && !g.has(""));
        for name in g.names() {
            assert_eq!(g.name(g.id(name).unwrap()), name);
        }
    }

    #[test]
    fn without_auto_admin_or_user_management() {
        let config = CapabilitiesConfig::new([("read", Vec::<String>::new())]);
        let g = CapabilityGraph::new(&config).unwrap();
        assert_eq!(g.admin(), None);
        assert_eq!(g.user_management(), None);
        assert!(g.defaults().is_empty());

        // `admin` declared by hand, without auto_admin: an ordinary capability.
        let config = CapabilitiesConfig::new([("admin", vec!["read"]), ("read", vec![])]);
        let g = CapabilityGraph::new(&config).unwrap();
        assert_eq!(closure_names(&g, "admin"), ["admin", "read"]);
        assert_eq!(g.admin(), g.id("admin"));

        // auto_admin on an empty graph: admin alone.
        let g = CapabilityGraph::new(&CapabilitiesConfig::default().with_auto_admin(true)).unwrap();
        assert_eq!(closure_names(&g, "admin"), ["admin"]);
    }

    #[test]
    fn cycles_are_harmless() {
        let config = CapabilitiesConfig::new([
            ("a", vec!["b"]),
            ("b", vec!["a"]),
            ("c", vec!["c", "a"]),
            ("d", vec![]),
        ]);
        let g = CapabilityGraph::new(&config).unwrap();
        assert_eq!(closure_names(&g, "a"), ["a", "b"]);
        assert_eq!(closure_names(&g, "b"), ["a", "b"]);
        assert_eq!(closure_names(&g, "c"), ["a", "b", "c"]);
        assert_eq!(closure_names(&g, "d"), ["d"]);

        // A long chain is followed to its end.
        let chain: Vec<(String, Vec<String>)> = (0..200)
            .map(|i| (format!("c{i:03}"), vec![format!("c{:03}", (i + 1) % 200)]))
            .collect();
        let g = CapabilityGraph::new(&CapabilitiesConfig::new(chain)).unwrap();
        assert_eq!(g.closure(g.id("c150").unwrap()).len(), 200);
    }

    #[test]
    fn undeclared_names_are_config_errors() {
        let config = CapabilitiesConfig::new([("read", vec![]), ("write", vec!["reed"])]);
        assert_eq!(
            config_error(&config),
            "configuration key `capabilities.graph.write`: implies `reed`, which is not declared"
        );

        let config = CapabilitiesConfig::new([("read", Vec::<String>::new())])
            .with_default_capabilities(["read", "browse"]);
        let msg = config_error(&config);
        assert!(
            msg.contains("capabilities.default_capabilities") && msg.contains("`browse`"),
            "{msg}"
        );

        let config = CapabilitiesConfig::new([("read", Vec::<String>::new())])
            .with_guest_capabilities(["peek"]);
        let msg = config_error(&config);
        assert!(
            msg.contains("capabilities.guest_capabilities") && msg.contains("`peek`"),
            "{msg}"
        );

        // `admin` only exists through auto_admin, not in the defaults without it.
        let config = CapabilitiesConfig::new([("read", Vec::<String>::new())])
            .with_default_capabilities(["admin"]);
        assert!(config_error(&config).contains("`admin`"));
        let g = CapabilityGraph::new(&config.with_auto_admin(true)).unwrap();
        assert_eq!(g.defaults(), g.closure(g.admin().unwrap()));
    }

    #[test]
    fn admin_declared_with_auto_admin_is_refused() {
        let config =
            CapabilitiesConfig::new([("admin", Vec::<String>::new())]).with_auto_admin(true);
        let msg = config_error(&config);
        assert!(msg.contains("capabilities.graph.admin"), "{msg}");
        assert!(msg.contains("auto_admin"), "{msg}");
    }

    #[test]
    fn empty_name_is_refused() {
        let config = CapabilitiesConfig::new([("", Vec::<String>::new())]);
        assert!(config_error(&config).contains("empty"));
    }

    #[test]
    fn size_limit() {
        let full = |n: usize| {
            CapabilitiesConfig::new(
                (0..n).map(|i| (format!("c{i:03}"), vec![format!("c{:03}", (i + 1) % n)])),
            )
        };
        let g = CapabilityGraph::new(&full(MAX_CAPABILITIES)).unwrap();
        let last = g.id("c255").unwrap();
        assert_eq!(last.index(), 255);
        assert_eq!(g.closure(last).len(), MAX_CAPABILITIES);
        assert_eq!(g.closure(last).iter().count(), MAX_CAPABILITIES);

        let msg = config_error(&full(MAX_CAPABILITIES + 1));
        assert!(msg.contains("257") && msg.contains("256"), "{msg}");
        // auto_admin counts.
        let msg = config_error(&full(MAX_CAPABILITIES).with_auto_admin(true));
        assert!(msg.contains("257"), "{msg}");
    }

    #[test]
    fn expand_reports_unknown_names() {
        let g = readme_graph();
        let e = g.expand(["moderate", "announce"]);
        assert_eq!(
            g.names_of(&e.set),
            ["announce", "moderate", "read", "write"]
        );
        assert!(e.unknown.is_empty());

        let e = g.expand(["write", "retired", "", "retired", "Write"]);
        assert_eq!(g.names_of(&e.set), ["read", "write"]);
        assert_eq!(e.unknown, ["retired", "", "Write"]);

        let e = g.expand(["admin"]);
        assert_eq!(e.set.len(), g.len());

        let e = g.expand([]);
        assert!(e.set.is_empty() && e.unknown.is_empty());

        let stored = ["read".to_owned(), "gone".to_owned()];
        let e = g.expand(stored.iter().map(String::as_str));
        assert_eq!(e.unknown, ["gone"]);
    }

    #[test]
    fn can_grant_rules() {
        let g = readme_graph();
        let set = |names: &[&str]| g.expand(names.iter().copied()).set;
        let raw = |names: &[&str]| {
            g.resolve_declared(&names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap()
        };

        let moderator = set(&["moderate", "user_management"]);
        assert!(g.can_grant(&moderator, &raw(&["read"])));
        assert!(g.can_grant(&moderator, &raw(&["write", "moderate"])));
        assert!(g.can_grant(&moderator, &raw(&["user_management"])));
        assert!(g.can_grant(&moderator, &CapSet::new()));
        assert!(!g.can_grant(&moderator, &raw(&["announce"])));
        assert!(!g.can_grant(&moderator, &raw(&["read", "announce"])));
        assert!(!g.can_grant(&moderator, &raw(&["admin"])));

        // Granting a capability grants its closure: same answer either way.
        assert!(g.can_grant(&moderator, &set(&["moderate"])));
        assert!(!g.can_grant(&moderator, &set(&["announce"])));

        // admin holds everything through its closure, even as a raw set.
        let admin = raw(&["admin"]);
        assert!(g.can_grant(&admin, &set(&["admin"])));
        assert!(g.can_grant(&admin, &raw(&["user_management", "announce"])));

        assert!(!g.can_grant(&CapSet::new(), &raw(&["read"])));
    }

    #[test]
    fn resolve_declared_refuses_unknown_names() {
        let g = readme_graph();
        let set = g
            .resolve_declared(&["moderate".to_owned(), "read".to_owned()])
            .unwrap();
        assert_eq!(g.names_of(&set), ["moderate", "read"]);

        let e = g
            .resolve_declared(&["read".to_owned(), "bake".to_owned(), "fry".to_owned()])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert_eq!(e.status(), 400);
        assert_eq!(e.message(), "unknown capability `bake`");
        assert!(g.resolve_declared(&[]).unwrap().is_empty());
    }

    #[test]
    fn capset_operations() {
        let id = |i: usize| CapId::from_index(i).unwrap();
        let a: CapSet = [0, 5, 64, 200, 255].map(id).into_iter().collect();
        let b: CapSet = [5, 64, 100].map(id).into_iter().collect();
        assert_eq!(a.len(), 5);
        assert!(a.contains(id(255)) && !a.contains(id(254)));
        assert!(!a.contains(CapId(u16::MAX)));
        assert_eq!(
            a.iter().map(CapId::index).collect::<Vec<_>>(),
            [0, 5, 64, 200, 255]
        );
        assert_eq!(
            a.union(&b).iter().map(CapId::index).collect::<Vec<_>>(),
            [0, 5, 64, 100, 200, 255]
        );
        assert_eq!(
            a.intersection(&b)
                .iter()
                .map(CapId::index)
                .collect::<Vec<_>>(),
            [5, 64]
        );
        assert!(a.intersection(&b).is_subset(&a));
        assert!(!b.is_subset(&a));
        assert!(CapSet::new().is_subset(&b) && CapSet::new().is_empty());

        let mut c = CapSet::new();
        assert!(c.insert(id(7)));
        assert!(!c.insert(id(7)));
        assert!(!c.insert(CapId(u16::MAX)));
        assert!(c.remove(id(7)) && !c.remove(id(7)));
        assert!(c.is_empty());
        assert_eq!(format!("{b:?}"), "{5, 64, 100}");

        // Ids from elsewhere never panic the set-based queries.
        let g = readme_graph();
        let foreign: CapSet = [64, 100, 255].map(id).into_iter().collect();
        assert!(g.names_of(&foreign).is_empty());
        assert!(g.closure_of(&foreign).is_empty());
        assert!(!g.can_grant(&foreign, &foreign));
        assert_eq!(g.names_of(&a), ["admin", "write"]);
    }

    #[test]
    fn debug_lists_closures() {
        let g = readme_graph();
        let debug = format!("{g:?}");
        assert!(debug.contains(r#""write": ["read", "write"]"#), "{debug}");
    }
}
