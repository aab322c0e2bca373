//! The dispatcher against socketpairs: a test plays the supervisor on the control
//! socket and the executors on their slot sockets.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::channel::{FrameStream, Received};
use crate::frame::{ExitCause, Message};
use crate::sys;

struct Harness {
    dispatcher: Dispatcher,
    supervisor: FrameStream,
}

impl Harness {
    fn new() -> Harness {
        let (broker_end, supervisor_end) = sys::socketpair().unwrap();
        let dispatcher = Dispatcher::new(Some(FrameStream::new(broker_end))).unwrap();
        Harness { dispatcher, supervisor: FrameStream::new(supervisor_end) }
    }

    /// Start `slot`/`generation` through the control socket; returns the executor's end.
    fn start(&mut self, slot: u32, generation: u32) -> FrameStream {
        let (broker_end, executor_end) = sys::socketpair().unwrap();
        let message = Message::SlotSocket { slot, generation, worker_id: format!("w{slot:04}") };
        self.supervisor.send(&message, Some(broker_end.as_fd())).unwrap();
        drop(broker_end);
        let executor = FrameStream::new(executor_end);
        executor.send(&Message::Ready { generation: u64::from(generation) }, None).unwrap();
        let events = self.settle();
        assert!(events.contains(&Event::SlotReady { slot }), "{events:?}");
        executor
    }

    fn exited(&mut self, slot: u32, generation: u32, cause: ExitCause) {
        let message = Message::ExecutorExited { slot, generation, worker_id: format!("w{slot:04}"), cause };
        self.supervisor.send(&message, None).unwrap();
    }

    /// Every event until the sockets are quiet for a moment.
    fn settle(&mut self) -> Vec<Event> {
        let mut all = Vec::new();
        let mut quiet = 0;
        while quiet < 2 {
            let (events, _) = self.dispatcher.poll(Some(Duration::from_millis(1))).unwrap();
            quiet = if events.is_empty() { quiet + 1 } else { 0 };
            all.extend(events);
        }
        all
    }
}

fn next_assign(executor: &mut FrameStream) -> (u64, String, Vec<u8>) {
    match executor.recv(Some(Duration::from_secs(5))).unwrap() {
        Received::Message(Message::Assign { dispatch_id, execution_id, task }, _) => (dispatch_id, execution_id, task),
        other => panic!("expected an Assign, got {other:?}"),
    }
}

fn complete(executor: &FrameStream, dispatch_id: u64, execution_id: &str, result: &[u8]) {
    let message = Message::Complete { dispatch_id, execution_id: execution_id.into(), result: result.to_vec() };
    executor.send(&message, None).unwrap();
}

fn logs(events: &[Event]) -> Vec<&str> {
    events.iter().filter_map(|e| if let Event::Log { message, .. } = e { Some(message.as_str()) } else { None }).collect()
}

#[test]
fn assign_then_complete_round_trips_the_bytes() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    assert_eq!(h.dispatcher.free_slots(), 1);
    assert_eq!(h.dispatcher.assign(br#"{"taskId":"t1"}"#, "t1"), Some(1));
    assert_eq!(h.dispatcher.assign(b"{}", "t2"), None, "the only slot is leased");
    let (dispatch_id, execution_id, task) = next_assign(&mut executor);
    assert_eq!(task, br#"{"taskId":"t1"}"#);
    assert!(crate::frame::is_execution_id(&execution_id));
    complete(&executor, dispatch_id, &execution_id, b"result-json");
    let events = h.settle();
    assert_eq!(events, vec![Event::Completed { slot: 1, task_id: "t1".into(), result: b"result-json".to_vec() }]);
    assert_eq!((h.dispatcher.free_slots(), h.dispatcher.leases()), (1, 0));
}

#[test]
fn completions_that_match_no_lease_are_dropped_and_logged() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    let (dispatch_id, execution_id, _) = next_assign(&mut executor);
    complete(&executor, dispatch_id, &new_execution_id(), b"wrong execution");
    complete(&executor, dispatch_id + 1, &execution_id, b"wrong dispatch");
    let events = h.settle();
    assert_eq!(logs(&events), vec!["dropped a completion that matches no lease"; 2]);
    assert_eq!(h.dispatcher.leases(), 1, "the lease survives a mismatched completion");
    complete(&executor, dispatch_id, &execution_id, b"right");
    let events = h.settle();
    assert_eq!(events, vec![Event::Completed { slot: 1, task_id: "t1".into(), result: b"right".to_vec() }]);
    complete(&executor, dispatch_id, &execution_id, b"again");
    assert_eq!(logs(&h.settle()), vec!["dropped a completion that matches no lease"], "a lease settles once");
}

#[test]
fn a_completion_written_before_the_exit_wins_w7() {
    let mut h = Harness::new();
    let mut executor = h.start(3, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    let (dispatch_id, execution_id, _) = next_assign(&mut executor);
    complete(&executor, dispatch_id, &execution_id, b"done");
    drop(executor);
    h.exited(3, 1, ExitCause::Signal(9));
    // Only the control socket is handled first if both are ready; the exit reads the slot.
    let events = h.settle();
    assert_eq!(events, vec![Event::Completed { slot: 3, task_id: "t1".into(), result: b"done".to_vec() }]);
    assert_eq!(h.dispatcher.free_slots(), 0, "a dead slot is not leasable");
}

#[test]
fn an_exit_fails_the_in_flight_task_with_its_status() {
    let mut h = Harness::new();
    let mut executor = h.start(2, 1);
    h.dispatcher.assign(b"{}", "t9").unwrap();
    next_assign(&mut executor);
    drop(executor);
    h.exited(2, 1, ExitCause::Signal(9));
    let reason = "executor process for worker w0002 exited (killed by signal 9) while running task t9".to_string();
    assert_eq!(h.settle(), vec![Event::Failed { slot: 2, task_id: "t9".into(), reason }]);
    h.exited(2, 1, ExitCause::Code(1));
    assert_eq!(h.settle(), vec![], "a repeated exit event changes nothing");
}

#[test]
fn an_exit_of_an_older_generation_is_ignored() {
    let mut h = Harness::new();
    let _old = h.start(1, 1);
    let mut executor = h.start(1, 2);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    next_assign(&mut executor);
    h.exited(1, 1, ExitCause::Code(0));
    assert_eq!(h.settle(), vec![]);
    assert_eq!(h.dispatcher.leases(), 1);
}

#[test]
fn a_replacement_fails_the_lease_of_the_generation_it_replaces() {
    let mut h = Harness::new();
    let mut old = h.start(1, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    next_assign(&mut old);
    let (broker_end, _executor_end) = sys::socketpair().unwrap();
    h.supervisor.send(&Message::SlotSocket { slot: 1, generation: 2, worker_id: "w0001".into() }, Some(broker_end.as_fd())).unwrap();
    let reason = "executor process for worker w0001 was replaced while running task t1".to_string();
    assert_eq!(h.settle(), vec![Event::Failed { slot: 1, task_id: "t1".into(), reason }]);
    assert!(matches!(old.recv(Some(Duration::from_secs(5))).unwrap(), Received::Closed), "the old socket is closed");
}

#[test]
fn garbage_on_a_slot_fails_its_task_and_detaches_it() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    next_assign(&mut executor);
    sys::write_all(executor.fd(), b"definitely not a frame").unwrap();
    let events = h.settle();
    assert_eq!(logs(&events), vec!["executor slot socket failed"]);
    let reason = "executor pipe for worker w0001 is broken for task t1".to_string();
    assert!(events.contains(&Event::Failed { slot: 1, task_id: "t1".into(), reason }), "{events:?}");
    assert_eq!((h.dispatcher.attached(), h.dispatcher.free_slots()), (0, 0));
}

#[test]
fn an_assign_to_a_dead_socket_goes_to_the_next_free_slot_w8() {
    let mut h = Harness::new();
    let dead = h.start(1, 1);
    let mut alive = h.start(2, 1);
    drop(dead);
    assert_eq!(h.dispatcher.assign(b"{}", "t1"), Some(2));
    next_assign(&mut alive);
}

#[test]
fn watched_fds_are_reported_while_readable_and_never_mistaken_for_slots() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    let (ours, peer) = sys::socketpair().unwrap();
    h.dispatcher.watch_fd(ours.as_fd()).unwrap();
    assert_eq!(h.settle(), vec![]);
    sys::write_all(peer.as_fd(), b"answer").unwrap();
    let fd = ours.as_raw_fd();
    for _ in 0..2 {
        let (events, _) = h.dispatcher.poll(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(events, vec![Event::Readable { fd }], "reported again while unread (level-triggered)");
    }
    h.dispatcher.unwatch_fd(ours.as_fd());
    assert_eq!(h.settle(), vec![]);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    next_assign(&mut executor);
}

#[test]
fn fence_replies_reach_only_the_generation_that_asked_w9() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 4);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    let (dispatch_id, _, _) = next_assign(&mut executor);
    executor.send(&Message::FenceRequest { dispatch_id, request: b"t1".to_vec() }, None).unwrap();
    assert_eq!(h.settle(), vec![Event::FenceRequested { slot: 1, generation: 4, task_id: "t1".into() }]);
    assert!(!h.dispatcher.fence_reply(1, 3, b"stale"), "another generation's reply is discarded");
    assert!(h.dispatcher.fence_reply(1, 4, b"fresh"));
    match executor.recv(Some(Duration::from_secs(5))).unwrap() {
        Received::Message(Message::FenceReply { dispatch_id: id, reply }, _) => {
            assert_eq!((id, reply), (dispatch_id, b"fresh".to_vec()));
        }
        other => panic!("{other:?}"),
    }
    assert!(!h.dispatcher.fence_reply(1, 4, b"twice"), "one reply per request");

    executor.send(&Message::FenceRequest { dispatch_id, request: b"t1".to_vec() }, None).unwrap();
    h.settle();
    drop(executor);
    h.exited(1, 4, ExitCause::Code(1));
    let mut next = h.start(1, 5);
    assert!(!h.dispatcher.fence_reply(1, 4, b"late"), "the dead generation's reply never reaches the next");
    assert!(matches!(next.recv(Some(Duration::from_millis(50))).unwrap(), Received::TimedOut));
}

#[test]
fn a_fence_request_for_another_task_gets_an_error_reply() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    let (dispatch_id, _, _) = next_assign(&mut executor);
    executor.send(&Message::FenceRequest { dispatch_id, request: b"someone-else".to_vec() }, None).unwrap();
    assert_eq!(logs(&h.settle()), vec!["attempt-fence request matches no lease"]);
    match executor.recv(Some(Duration::from_secs(5))).unwrap() {
        Received::Message(Message::FenceReply { reply, .. }, _) => {
            assert_eq!(reply, fence_error("no such dispatch on this slot"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn drain_stop_and_drained() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    h.supervisor.send(&Message::Drain, None).unwrap();
    assert_eq!(h.settle(), vec![Event::Drain]);
    h.dispatcher.stop_executors();
    assert!(matches!(executor.recv(Some(Duration::from_secs(5))).unwrap(), Received::Message(Message::Stop, _)));
    h.dispatcher.drained().unwrap();
    assert!(matches!(h.supervisor.recv(Some(Duration::from_secs(5))).unwrap(), Received::Message(Message::Drained, _)));
    drop(h.supervisor);
    let (events, _) = h.dispatcher.poll(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(events, vec![Event::ControlClosed]);
}

#[test]
fn abandoned_leases_are_returned_and_their_slots_stay_busy() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    let (dispatch_id, execution_id, _) = next_assign(&mut executor);
    assert_eq!(h.dispatcher.abandon_leases(), vec!["t1".to_string()]);
    complete(&executor, dispatch_id, &execution_id, b"late");
    assert_eq!(logs(&h.settle()), vec!["dropped a completion that matches no lease"]);
    assert_eq!(h.dispatcher.free_slots(), 0);
}

#[test]
fn the_waker_ends_a_wait_from_another_thread() {
    let mut h = Harness::new();
    let waker = h.dispatcher.waker();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    let (events, wakeup) = h.dispatcher.poll(None).unwrap();
    assert!(events.is_empty() && wakeup.woken);
    thread.join().unwrap();
}

#[test]
fn execution_ids_are_uuid4_hex() {
    let id = new_execution_id();
    assert!(crate::frame::is_execution_id(&id));
    assert_eq!(&id[12..13], "4");
    assert_ne!(id, new_execution_id());
}

/// What a test executor does next in the interleaving property.
#[derive(Clone, Debug)]
enum Step {
    Assign,
    Complete(usize),
    CompleteStale(usize),
    Kill(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Assign),
        3 => (0..3usize).prop_map(Step::Complete),
        1 => (0..3usize).prop_map(Step::CompleteStale),
        1 => (0..3usize).prop_map(Step::Kill),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever executors do (finish, send stale completions, die and restart), every
    /// assigned task ends in exactly one outcome, and only a finished one is Completed.
    #[test]
    fn every_task_ends_exactly_once(steps in proptest::collection::vec(step(), 1..40)) {
        let mut h = Harness::new();
        let mut generations = [1u32; 3];
        let mut executors: Vec<FrameStream> = (0..3).map(|slot| h.start(slot as u32, 1)).collect();
        let mut running: Vec<Option<(u64, String, String)>> = vec![None, None, None];
        let mut finished = std::collections::HashSet::new();
        let mut outcomes: HashMap<String, usize> = HashMap::new();
        let mut assigned = 0usize;
        let record = |events: Vec<Event>, outcomes: &mut HashMap<String, usize>, finished: &std::collections::HashSet<String>| {
            for event in events {
                match event {
                    Event::Completed { task_id, .. } => {
                        assert!(finished.contains(&task_id), "{task_id} completed without finishing");
                        *outcomes.entry(task_id).or_default() += 1;
                    }
                    Event::Failed { task_id, .. } => *outcomes.entry(task_id).or_default() += 1,
                    _ => {}
                }
            }
        };
        for step in steps {
            match step {
                Step::Assign => {
                    let task_id = format!("t{assigned}");
                    if let Some(slot) = h.dispatcher.assign(b"{}", &task_id) {
                        assigned += 1;
                        let (dispatch_id, execution_id, _) = next_assign(&mut executors[slot as usize]);
                        running[slot as usize] = Some((dispatch_id, execution_id, task_id));
                    }
                }
                Step::Complete(slot) => {
                    if let Some((dispatch_id, execution_id, task_id)) = running[slot].take() {
                        finished.insert(task_id);
                        complete(&executors[slot], dispatch_id, &execution_id, b"ok");
                    }
                }
                Step::CompleteStale(slot) => complete(&executors[slot], 999_999, &new_execution_id(), b"stale"),
                Step::Kill(slot) => {
                    running[slot] = None;
                    h.exited(slot as u32, generations[slot], ExitCause::Signal(9));
                    let events = h.settle();
                    record(events, &mut outcomes, &finished);
                    generations[slot] += 1;
                    executors[slot] = h.start(slot as u32, generations[slot]);
                }
            }
            let events = h.settle();
            record(events, &mut outcomes, &finished);
        }
        for (slot, generation) in generations.iter().enumerate() {
            h.exited(slot as u32, *generation, ExitCause::Code(0));
        }
        let events = h.settle();
        record(events, &mut outcomes, &finished);
        prop_assert_eq!(outcomes.len(), assigned);
        prop_assert!(outcomes.values().all(|count| *count == 1), "{:?}", outcomes);
    }
}

#[test]
fn requeued_events_come_back_first_without_waiting() {
    let mut h = Harness::new();
    let first = vec![Event::Drain, Event::SlotReady { slot: 9 }];
    h.dispatcher.requeue(first.clone());
    let (events, _) = h.dispatcher.poll(None).unwrap();
    assert_eq!(events, first);
}

#[test]
fn a_result_larger_than_one_read_arrives_whole_before_the_exit() {
    let mut h = Harness::new();
    let mut executor = h.start(1, 1);
    h.dispatcher.assign(b"{}", "t1").unwrap();
    let (dispatch_id, execution_id, _) = next_assign(&mut executor);
    let result: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let expected = result.clone();
    let writer = std::thread::spawn(move || {
        complete(&executor, dispatch_id, &execution_id, &result);
    });
    let mut events = Vec::new();
    while !events.iter().any(|e| matches!(e, Event::Completed { .. })) {
        events.extend(h.dispatcher.poll(Some(Duration::from_secs(5))).unwrap().0);
    }
    writer.join().unwrap();
    h.exited(1, 1, ExitCause::Signal(9));
    events.extend(h.settle());
    assert_eq!(events, vec![Event::Completed { slot: 1, task_id: "t1".into(), result: expected }]);
}
