//! Connection slots of a server, so one address cannot take them all: at
//! most `max` connections at once; each address at most `per_address`;
//! and the last `reserve` slots only for an address that has none yet (a
//! second tablet, the front desk's phone pressing Stop), so a flood from
//! one machine — or a few — still leaves room for everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The slots. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Slots {
    inner: Arc<Mutex<Count>>,
    max: usize,
    per_address: usize,
    reserve: usize,
}

struct Count {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// Every slot is taken.
    All,
    /// This address has its share.
    Address,
}

/// A slot; given back when dropped.
pub(crate) struct Slot {
    slots: Slots,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.inner.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.address);
            }
        }
    }
}

impl Slots {
    /// `max` slots: an eighth of them (at least 4) per address, the last
    /// sixteenth (at least 2) kept for addresses without a connection.
    pub(crate) fn new(max: usize) -> Slots {
        let max = max.max(1);
        Slots {
            inner: Arc::new(Mutex::new(Count {
                total: 0,
                by_address: HashMap::new(),
            })),
            max,
            per_address: (max / 8).max(4).min(max),
            reserve: (max / 16).max(2).min(max / 2),
        }
    }

    /// A slot for a connection from `address`, if there is one for it.
    pub(crate) fn take(&self, address: IpAddr) -> Result<Slot, Full> {
        let mut c = self.inner.lock();
        let mine = c.by_address.get(&address).copied().unwrap_or(0);
        if c.total >= self.max || (mine > 0 && c.total >= self.max - self.reserve) {
            return Err(Full::All);
        }
        if mine >= self.per_address {
            return Err(Full::Address);
        }
        c.total += 1;
        *c.by_address.entry(address).or_default() += 1;
        Ok(Slot {
            slots: self.clone(),
            address,
        })
    }

    /// Connections per address at most.
    pub(crate) fn per_address(&self) -> usize {
        self.per_address
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let s = Slots::new(256);
        let flood: Vec<Slot> = (0..32).map(|_| s.take(ip(1)).unwrap()).collect();
        assert_eq!(s.take(ip(1)).err(), Some(Full::Address));
        let other = s.take(ip(2)).unwrap();
        drop(flood);
        assert!(s.take(ip(1)).is_ok(), "slots come back");
        drop(other);
    }

    #[test]
    fn the_last_slots_are_for_newcomers() {
        let s = Slots::new(64);
        assert_eq!((s.per_address, s.reserve), (8, 4));
        // Seven addresses with 8 each fill 56 of 64; 4 more from the
        // eighth reach the reserve.
        let mut held: Vec<Slot> = (0..56).map(|i| s.take(ip(i / 8)).unwrap()).collect();
        held.extend((0..4).map(|_| s.take(ip(20)).unwrap()));
        assert_eq!(
            s.take(ip(20)).err(),
            Some(Full::All),
            "the reserve is not for it"
        );
        // Four newcomers get the reserve, one slot each.
        for i in 0..4 {
            held.push(s.take(ip(100 + i)).unwrap());
        }
        assert_eq!(s.take(ip(200)).err(), Some(Full::All));
    }
}
