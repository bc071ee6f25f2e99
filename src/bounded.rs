//! A channel between threads bounded by bytes as well as by count. A queue bounded by count
//! alone holds that many of the biggest items: 8 batches of one 2 MB row each are 16 MB, and a
//! run of big rows then takes memory in proportion to how many are queued, not to the biggest.
//! Here a sender waits while what is queued plus its item would pass the byte limit; an item
//! bigger than the limit goes alone, once the queue is empty. So a queue holds at most
//! max(limit, biggest item), whatever the items' sizes.

use std::sync::mpsc::{self, RecvError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

/// A channel of at most `count` items and, unless one item alone is bigger, `bytes` bytes.
pub fn channel<T>(count: usize, bytes: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::sync_channel(count);
    let budget = Arc::new(Budget {
        state: Mutex::new(State::default()),
        freed: Condvar::new(),
        limit: bytes,
    });
    (
        Sender {
            tx,
            budget: budget.clone(),
        },
        Receiver { rx, budget },
    )
}

#[derive(Default)]
struct State {
    /// Bytes sent and not yet received.
    queued: usize,
    /// The receiver is gone: senders stop waiting.
    closed: bool,
}

struct Budget {
    state: Mutex<State>,
    freed: Condvar,
    limit: usize,
}

impl Budget {
    fn release(&self, bytes: usize) {
        let mut state = self.state.lock().expect("budget");
        state.queued -= bytes;
        self.freed.notify_all();
    }
}

pub struct Sender<T> {
    tx: SyncSender<(T, usize)>,
    budget: Arc<Budget>,
}

impl<T> Sender<T> {
    /// Send `item`, which weighs `bytes`; waits for room. Gives the item back when the
    /// receiver is gone.
    pub fn send(&self, item: T, bytes: usize) -> Result<(), T> {
        {
            let budget = &self.budget;
            let mut state = budget.state.lock().expect("budget");
            while !state.closed && state.queued > 0 && state.queued + bytes > budget.limit {
                state = budget.freed.wait(state).expect("budget");
            }
            if state.closed {
                return Err(item);
            }
            state.queued += bytes;
        }
        self.tx.send((item, bytes)).map_err(|e| {
            self.budget.release(bytes);
            e.0.0
        })
    }
}

pub struct Receiver<T> {
    rx: mpsc::Receiver<(T, usize)>,
    budget: Arc<Budget>,
}

impl<T> Receiver<T> {
    /// The next item; an error once every sender is gone and the queue is empty.
    pub fn recv(&self) -> Result<T, RecvError> {
        let (item, bytes) = self.rx.recv()?;
        self.budget.release(bytes);
        Ok(item)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.budget.state.lock().expect("budget");
        state.closed = true;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_queue_holds_at_most_the_limit_or_one_bigger_item() {
        let (tx, rx) = channel::<Vec<u8>>(100, 10);
        let peak = std::thread::scope(|s| {
            let sender = s.spawn(move || {
                for n in [4, 4, 4, 30, 1, 9, 2] {
                    tx.send(vec![0; n], n).unwrap();
                }
            });
            let mut peak = 0;
            loop {
                std::thread::sleep(Duration::from_millis(20));
                peak = peak.max(rx.budget.state.lock().unwrap().queued);
                if rx.recv().is_err() {
                    break;
                }
            }
            sender.join().unwrap();
            peak
        });
        assert!(peak <= 30, "queued {peak} bytes");
        // Count-bounded alone, all 54 bytes would have been queued.
        assert!(peak < 54);
    }

    #[test]
    fn a_sender_waiting_for_room_stops_when_the_receiver_goes() {
        let (tx, rx) = channel::<u8>(10, 10);
        tx.send(1, 8).unwrap();
        let waiting = std::thread::spawn(move || tx.send(2, 8));
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
        assert_eq!(waiting.join().unwrap(), Err(2));
    }
}
