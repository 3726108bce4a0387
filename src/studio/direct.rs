//! The studio's direct edits: what an author does to a scene without
//! typing (add, change, move or delete a cue; add a state; add or delete
//! a transition), made in the text itself through `tree` and `splice`, so
//! the file keeps its format, comments and key order. A cue or transition
//! is named by where it is written (the line and column the loader gives
//! it), so the page can edit what it shows.

use super::edit::{EditError, check_state_name, line_starts, offset};
use super::splice::{Splice, Val, insert, remove, set};
use super::tree::{Kind, Node, parse};
use crate::diag::Pos;

mod form;

pub use form::{Cue, CueChange, Edit, Part, Transition};
use form::{cue_val, time, transition_val};

/// Where a state's keys go, in the order the room controllers write them.
const STATE_KEYS: &[&str] = &[
    "description",
    "onEnter",
    "timeline",
    "onExit",
    "transitions",
];
/// Where a scene's keys go.
const SCENE_KEYS: &[&str] = &[
    "name",
    "sceneId",
    "description",
    "version",
    "initialState",
    "actions",
    "duration",
    "on_stop",
    "onStop",
    "globalEvents",
    "states",
];
/// Where a cue's keys go.
const CUE_KEYS: &[&str] = &["at", "action", "topic", "message", "timeout", "retain"];

/// `text` with `edit` made.
pub fn apply(text: &str, edit: &Edit) -> Result<String, EditError> {
    let doc = Doc::read(text)?;
    match edit {
        Edit::AddCue { state, part, cue } => {
            doc.add_cue(state.as_deref(), *part, cue_val(cue, *part)?)
        }
        Edit::SetCue { line, col, change } => doc.set_cue(doc.at(*line, *col)?, change),
        Edit::MoveCue {
            line,
            col,
            state,
            part,
            change,
        } => doc.move_cue(doc.at(*line, *col)?, state.as_deref(), *part, change),
        Edit::DeleteCue { line, col } => doc.delete_cue(&doc.at(*line, *col)?),
        Edit::AddState { name } => doc.add_state(name),
        Edit::AddTransition { state, transition } => {
            doc.add_transition(state.as_deref(), transition_val(transition)?)
        }
        Edit::DeleteTransition { line, col } => doc.delete_transition(&doc.at(*line, *col)?),
    }
}

/// A parsed text.
struct Doc<'t> {
    text: &'t str,
    root: Node,
    json: bool,
}

/// The sequence items leading to what is written at a place.
type Found = Vec<(Node, usize)>;
/// A timed group's list and its index there.
type Group = (Node, usize);

impl<'t> Doc<'t> {
    fn read(text: &'t str) -> Result<Doc<'t>, EditError> {
        let root = parse(text)?;
        if !root.is_map() {
            return Err(EditError("a scene is a mapping of keys".into()));
        }
        let json = root.is_flow();
        Ok(Doc { text, root, json })
    }

    /// The items over the cue or transition written at `line:col`.
    fn at(&self, line: u32, col: u32) -> Result<Found, EditError> {
        let at = offset(self.text, &line_starts(self.text), Pos { line, col })
            .filter(|&o| o < self.text.len())
            .ok_or_else(|| nothing_at(line, col))?;
        let found: Found = self
            .root
            .items_over(at)
            .into_iter()
            .map(|(list, i)| (list.clone(), i))
            .collect();
        if found.is_empty() {
            return Err(nothing_at(line, col));
        }
        Ok(found)
    }

    fn done(&self, splices: Vec<Splice>) -> String {
        let mut splices = splices;
        // From the end back; of two at one place the removal goes first,
        // so what is put there is not removed with it.
        splices.sort_by_key(|s| std::cmp::Reverse((s.from, s.to)));
        splices
            .iter()
            .fold(self.text.to_string(), |text, s| s.apply(&text))
    }

    /// The mapping a cue list of `state` lives in: the state's, or the
    /// scene's for a timed list.
    fn holder(&self, state: Option<&str>) -> Result<&Node, EditError> {
        match (self.root.get("states"), state) {
            (Some(states), Some(name)) => states
                .get(name)
                .filter(|s| s.is_map())
                .ok_or_else(|| EditError(format!("there is no state `{name}`"))),
            (Some(_), None) => Err(EditError("name the state the cue goes in".into())),
            (None, None) => Ok(&self.root),
            (None, Some(_)) => Err(EditError(
                "a timed list is one state: its cues go in `actions` or `on_stop`".into(),
            )),
        }
    }

    fn add_cue(&self, state: Option<&str>, part: Part, cue: Val) -> Result<String, EditError> {
        self.holder(state)?;
        let machine = self.root.get("states").is_some();
        if machine == matches!(part, Part::Actions | Part::Stop) {
            return Err(EditError(if machine {
                "a state's cues go in onEnter, timeline or onExit".into()
            } else {
                "a timed list's cues go in actions or on_stop".into()
            }));
        }
        let at = |n: &Node| n.get("at").and_then(|a| a.scalar()?.parse::<f64>().ok());
        let new = match &cue {
            Val::Map(e) if part.timed() => {
                e.iter()
                    .find(|(k, _)| k == "at")
                    .and_then(|(_, v)| match v {
                        Val::Num(n) => Some(*n),
                        _ => None,
                    })
            }
            _ => None,
        };
        // In time order: before the first cue that comes later.
        let index = |list: &Node| {
            let later = |n: &Node| at(n).zip(new).is_some_and(|(a, b)| a > b);
            list.items()
                .iter()
                .position(later)
                .unwrap_or(list.items().len())
        };
        let order = if machine { STATE_KEYS } else { SCENE_KEYS };
        self.put_in_list(state, part.keys(self.json), cue, order, &index)
    }

    /// `item` put in the list under the first of `keys` in `state`'s
    /// mapping (the scene's for none) at `index`; the list is made when
    /// there is none, where `order` puts its key.
    fn put_in_list(
        &self,
        state: Option<&str>,
        keys: &[&str],
        item: Val,
        order: &[&str],
        index: &dyn Fn(&Node) -> usize,
    ) -> Result<String, EditError> {
        let holder = self.holder_of(state)?;
        match keys.iter().find_map(|k| holder.get(k).map(|v| (*k, v))) {
            Some((_, list)) if matches!(list.kind, Kind::Seq { .. }) => {
                Ok(self.done(vec![insert(
                    self.text,
                    list,
                    index(list),
                    None,
                    &item,
                    self.json,
                )?]))
            }
            Some((key, v)) if v.scalar() == Some("") => {
                // `onEnter:` with nothing after it: the key goes, and comes
                // back at its place with the list.
                let at = holder
                    .entries()
                    .iter()
                    .position(|(k, _)| k.scalar() == Some(key))
                    .unwrap_or(0);
                let text = self.done(vec![remove(self.text, holder, at)?]);
                let doc = Doc::read(&text)?;
                let holder = doc.holder_of(state)?;
                let list = Val::Seq(vec![item]);
                Ok(doc.done(vec![insert(&text, holder, at, Some(key), &list, doc.json)?]))
            }
            Some((key, _)) => Err(EditError(format!(
                "`{key}` is not a list: fix it in the text first"
            ))),
            None => self.add_key(holder, keys[0], &Val::Seq(vec![item]), order),
        }
    }

    /// `state`'s mapping, or the scene's for none.
    fn holder_of(&self, state: Option<&str>) -> Result<&Node, EditError> {
        match state {
            None => Ok(&self.root),
            Some(_) => self.holder(state),
        }
    }

    /// `key: v` added to mapping `map` where `order` puts it.
    fn add_key(&self, map: &Node, key: &str, v: &Val, order: &[&str]) -> Result<String, EditError> {
        let index = place(map, key, order);
        Ok(self.done(vec![insert(
            self.text,
            map,
            index,
            Some(key),
            v,
            self.json,
        )?]))
    }

    /// The cue at `found` and, when it is one of a timed group's actions,
    /// the group.
    fn cue<'f>(&self, found: &'f Found) -> Result<(&'f Node, Option<&'f Group>), EditError> {
        let (list, i) = found.last().expect("found is never empty");
        let item = &list.items()[*i];
        if item.get("message").is_none() && item.get("actions").is_none() {
            return Err(EditError("there is no cue written there".into()));
        }
        let group = found
            .len()
            .checked_sub(2)
            .map(|g| &found[g])
            .filter(|(l, gi)| {
                l.items()[*gi]
                    .get("actions")
                    .is_some_and(|a| a.start == list.start)
            });
        Ok((item, group))
    }

    fn cue_fields(&self, found: &Found) -> Result<Vec<(String, Val)>, EditError> {
        let (item, group) = self.cue(found)?;
        let mut out = Vec::new();
        let group_at = group.and_then(|(l, gi)| l.items()[*gi].get("at"));
        for key in CUE_KEYS {
            let node = if *key == "at" {
                item.get(key).or(group_at)
            } else {
                item.get(key)
            };
            if let Some(v) = node.and_then(|n| n.scalar()) {
                let val = match v.parse::<f64>() {
                    Ok(n) if matches!(*key, "at" | "timeout") => Val::Num(n),
                    _ if *key == "retain" => Val::Bool(v == "true"),
                    _ => Val::Str(v.to_string()),
                };
                out.push((key.to_string(), val));
            }
        }
        Ok(out)
    }

    fn set_cue(&self, found: Found, change: &CueChange) -> Result<String, EditError> {
        let (item, group) = self.cue(&found)?;
        change.check()?;
        let mut splices = Vec::new();
        if let Some(at) = change.at {
            let at = time(at)?;
            let number = |n: Option<&Node>| n.and_then(|n| n.scalar()?.parse::<f64>().ok());
            match group {
                Some((list, gi)) if item.get("at").is_none() => {
                    let g = &list.items()[*gi];
                    let others = g
                        .get("actions")
                        .map_or(0, |a| a.items().len().saturating_sub(1));
                    match g.get("at") {
                        _ if number(g.get("at")) == Some(at) => {}
                        // One of several actions at a time: it moves out alone.
                        _ if others > 0 => return self.split_out(found, change),
                        Some(node) => splices.push(set(self.text, node, &Val::Num(at), self.json)?),
                        None => splices.push(self.entry(g, "at", Some(&Val::Num(at)))?),
                    }
                }
                // Only a timed cue has a time to change.
                _ if item.get("at").is_some() && number(item.get("at")) != Some(at) => {
                    splices.push(self.entry(item, "at", Some(&Val::Num(at)))?);
                }
                _ => {}
            }
        }
        for (key, v) in change.texts() {
            splices.push(self.entry(item, key, v.as_ref())?);
        }
        splices.retain(|s| s.from != s.to || !s.with.is_empty());
        Ok(self.done(splices))
    }

    /// One action of a timed group changed to another time: out of the
    /// group, into the same timeline as its own item.
    fn split_out(&self, found: Found, change: &CueChange) -> Result<String, EditError> {
        let state = self.state_of(&found);
        self.move_cue(found, state.as_deref(), Part::Timeline, change)
    }

    /// The cue at `found`, changed where `change` says, taken from where it
    /// is and put in `state`'s `part` (a timed part at its time, else 0 s).
    fn move_cue(
        &self,
        found: Found,
        state: Option<&str>,
        part: Part,
        change: &CueChange,
    ) -> Result<String, EditError> {
        change.check()?;
        let mut fields = self.cue_fields(&found)?;
        let old_at = fields
            .iter()
            .find(|(k, _)| k == "at")
            .map(|(_, v)| v.clone());
        for (key, v) in change.texts() {
            fields.retain(|(k, _)| k != key);
            if let Some(v) = v {
                fields.push((key.to_string(), v));
            }
        }
        fields.retain(|(k, _)| k != "at");
        if part.timed() {
            let at = match (change.at, old_at) {
                (Some(at), _) => Val::Num(time(at)?),
                (None, Some(at)) => at,
                (None, None) => Val::Num(0.0),
            };
            fields.push(("at".into(), at));
        }
        let rank = |k: &str| CUE_KEYS.iter().position(|c| *c == k);
        fields.sort_by_key(|(k, _)| rank(k));
        let text = self.delete_cue(&found)?;
        Doc::read(&text)?.add_cue(state, part, Val::Map(fields))
    }

    /// The state whose lists hold `found`.
    fn state_of(&self, found: &Found) -> Option<String> {
        let (list, _) = found.first()?;
        let states = self.root.get("states")?;
        states
            .entries()
            .iter()
            .find(|(_, st)| st.start <= list.start && list.end <= st.end)
            .and_then(|(k, _)| k.scalar().map(str::to_string))
    }

    /// Key `key` of cue mapping `map` set to `v`, added, or (none) removed.
    fn entry(&self, map: &Node, key: &str, v: Option<&Val>) -> Result<Splice, EditError> {
        let at = map
            .entries()
            .iter()
            .position(|(k, _)| k.scalar() == Some(key));
        match (at, v) {
            (Some(i), Some(v)) => set(self.text, &map.entries()[i].1, v, self.json),
            (Some(i), None) => remove(self.text, map, i),
            (None, Some(v)) => insert(
                self.text,
                map,
                place(map, key, CUE_KEYS),
                Some(key),
                v,
                self.json,
            ),
            (None, None) => Ok(Splice {
                from: 0,
                to: 0,
                with: String::new(),
            }),
        }
    }

    fn delete_cue(&self, found: &Found) -> Result<String, EditError> {
        let (_, group) = self.cue(found)?;
        let (list, i) = found.last().expect("found is never empty");
        let splice = match group {
            Some((glist, gi)) if list.items().len() == 1 => remove(self.text, glist, *gi)?,
            _ => remove(self.text, list, *i)?,
        };
        Ok(self.done(vec![splice]))
    }

    fn add_state(&self, name: &str) -> Result<String, EditError> {
        let Some(states) = self.root.get("states").filter(|s| s.is_map()) else {
            return Err(EditError(
                "a timed list is one state: start a state machine to add states".into(),
            ));
        };
        check_state_name(name)?;
        if states.get(name).is_some() {
            return Err(EditError(format!("there is a state `{name}` already")));
        }
        let state = Val::map([
            ("onEnter", Val::Seq(vec![])),
            ("transitions", Val::Seq(vec![])),
        ]);
        let end = states.entries().len();
        Ok(self.done(vec![insert(
            self.text,
            states,
            end,
            Some(name),
            &state,
            self.json,
        )?]))
    }

    fn add_transition(&self, state: Option<&str>, t: Val) -> Result<String, EditError> {
        let (key, order) = match state {
            None if self.root.get("states").is_some() => ("globalEvents", SCENE_KEYS),
            None => return Err(EditError("a timed list has no transitions".into())),
            Some(_) => ("transitions", STATE_KEYS),
        };
        self.put_in_list(state, &[key], t, order, &|list| list.items().len())
    }

    fn delete_transition(&self, found: &Found) -> Result<String, EditError> {
        let (list, i) = found.last().expect("found is never empty");
        if list.items()[*i].get("goto").is_none() {
            return Err(EditError("there is no transition written there".into()));
        }
        Ok(self.done(vec![remove(self.text, list, *i)?]))
    }
}

fn nothing_at(line: u32, col: u32) -> EditError {
    EditError(format!(
        "nothing is written at {line}:{col}: check the text again"
    ))
}

/// Where `key` goes in `map`: before the first key `order` puts after it.
fn place(map: &Node, key: &str, order: &[&str]) -> usize {
    let rank = |k: &str| order.iter().position(|o| *o == k);
    let Some(mine) = rank(key) else {
        return map.entries().len();
    };
    map.entries()
        .iter()
        .position(|(k, _)| k.scalar().and_then(rank).is_some_and(|r| r > mine))
        .unwrap_or(map.entries().len())
}

#[cfg(test)]
#[path = "direct/tests.rs"]
mod tests;
