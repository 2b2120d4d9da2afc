------------------------------ MODULE RaftTrace ------------------------------
(***************************************************************************)
(* Trace validation: is a raft-sim run a behaviour of Raft.tla?            *)
(*                                                                         *)
(* `TraceData` (written by `raft-sim replay SEED --tla-trace FILE`, see    *)
(* crates/raft-sim/src/tla.rs) lists the run's events: one per core step   *)
(* of one node, with what triggered it, the messages it sent and the       *)
(* node's state afterwards (memory and disk).                              *)
(*                                                                         *)
(* One core step may be several spec actions (a vote answer that wins the  *)
(* election makes the node leader and appends its no-op; an fsync releases *)
(* a vote that completes a quorum). So event `l` is matched by any number  *)
(* of the node's spec actions that its trigger allows (`Micro`), after     *)
(* which `Done` checks that the node's state equals the recorded one, that *)
(* every message it sent was sendable in one of the states passed through  *)
(* (`CanSend`: durability gating included) and that a received message was *)
(* really sent earlier. TLC searches these; if no way matches event `l`,   *)
(* the trace is rejected at `l` (the last "matched" line TLC prints is     *)
(* l - 1).                                                                 *)
(***************************************************************************)
EXTENDS Raft, TraceData

VARIABLES
    l,      \* the next event to match
    just    \* which of event l's sent messages a state so far allowed

traceVars == <<vars, l, just>>

ASSUME TLCSet(1, 0)

TraceInit ==
    /\ up = [n \in Server |-> FALSE]
    /\ role = [n \in Server |-> "Follower"]
    /\ term = [n \in Server |-> 0]
    /\ vote = [n \in Server |-> Nil]
    /\ snap = [n \in Server |-> TraceDisk[n].dsnap]
    /\ log = [n \in Server |-> <<>>]
    /\ commit = [n \in Server |-> 0]
    /\ votes = [n \in Server |-> {}]
    /\ match = [n \in Server |-> [p \in Server |-> 0]]
    /\ ackable = [n \in Server |-> {}]
    /\ installing = [n \in Server |-> NoSnap]
    /\ dterm = [n \in Server |-> TraceDisk[n].dterm]
    /\ dvote = [n \in Server |-> TraceDisk[n].dvote]
    /\ dcommit = [n \in Server |-> 0]
    /\ dsnap = [n \in Server |-> TraceDisk[n].dsnap]
    /\ dlog = [n \in Server |-> TraceDisk[n].dlog]
    /\ pend = [n \in Server |-> <<>>]
    /\ dinst = [n \in Server |-> {}]
    /\ msgs = {}
    /\ elected = {}
    /\ chosen = {}
    /\ l = 1
    /\ just = {}

Ev == TraceLog[l]

\* The node's state is the recorded one (a crashed node: its disk).
Matches(e) ==
    LET n == e.n
        p == e.post
    IN /\ up[n] = p.up
       /\ p.up => /\ role[n] = p.role /\ term[n] = p.term /\ vote[n] = p.vote
                  /\ commit[n] = p.commit /\ snap[n] = p.snap /\ log[n] = p.log
       /\ dterm[n] = p.dterm /\ dvote[n] = p.dvote /\ dsnap[n] = p.dsnap /\ dlog[n] = p.dlog

\* The sent messages the current state allows.
Justified(e) == {i \in 1..Len(e.sent) : CanSend(e.n, e.sent[i])}

\* A received message was sent by an earlier event (not forged, not made up).
SentBefore(e) ==
    e.kind = "recv" =>
        /\ e.from \in 1..(l - 1)
        /\ \E i \in 1..Len(TraceLog[e.from].sent) : TraceLog[e.from].sent[i] = e.msg

\* What a node does by itself within any step: election.rs `tally` (PreVote won, vote won,
\* lost), node.rs `deliver` (own durable vote), stepping down, the commit rule, leaving a
\* committed joint membership, finishing a snapshot install the runtime fed back, and a
\* snapshot the runtime created after applying.
\* (To keep the search small, a step down is tried only when the node ends as a follower,
\* and the commit index advances straight to the recorded one.)
Internal(n, e) ==
    \/ WinPreVote(n) \/ SelfVote(n) \/ BecomeLeader(n)
    \/ StepDown(n) /\ e.post.role = "Follower"
    \/ AdvanceCommit(n) /\ commit'[n] = e.post.commit
    \/ LeaveJoint(n) \/ FinishInstall(n) \/ AbortInstall(n)
    \/ Compact(n, e.post.snap.index)

\* The membership entries of the recorded log (what a ChangeMembership appended).
NewCfgs(e) == {e.post.log[i].cfg : i \in {j \in 1..Len(e.post.log) : IsCfg(e.post.log[j].cfg)}}

\* The spec actions a step with this trigger may take (node.rs `step`, by input).
Micro(e) ==
    LET n == e.n
        m == e.msg
    IN CASE e.kind = "recv" ->
              \/ UpdateTerm(n, m) \/ GrantVote(n, m) \/ HandleVoteResponse(n, m)
              \/ HandleAppend(n, m) \/ HandleAppendResponse(n, m) \/ HandleHeartbeat(n, m)
              \/ HandleInstallSnapshot(n, m) \/ HandleTimeoutNow(n, m)
              \/ Internal(n, e)
         [] e.kind = "tick" -> Timeout(n) \/ Internal(n, e)
         [] e.kind = "persisted" -> Persist(n) \/ Internal(n, e)
         [] e.kind = "propose" -> ClientRequest(n) \/ Internal(n, e)
         [] e.kind = "change" -> (\E c \in NewCfgs(e) : ChangeMembership(n, c)) \/ Internal(n, e)
         [] e.kind = "restart" -> Restart(n)
         [] e.kind = "crash" -> Crash(n)
         [] OTHER -> Internal(n, e)   \* installed, reads, pause, resume, transfers

\* Prune what can no longer match: within a step terms and commit indexes only grow, and
\* a leader's log only grows.
PostLast(e) == e.post.snap.index + Len(e.post.log)
Plausible(e) ==
    e.post.up =>
        /\ term'[e.n] <= e.post.term
        /\ up'[e.n] => commit'[e.n] <= e.post.commit
        /\ role'[e.n] = "Leader" => snap'[e.n].index + Len(log'[e.n]) <= PostLast(e)

Step ==
    /\ l <= Len(TraceLog)
    /\ UNCHANGED l
    /\ Micro(Ev)
    /\ Plausible(Ev)
    /\ just' = just \cup Justified(Ev)

Done ==
    /\ l <= Len(TraceLog)
    /\ Matches(Ev)
    /\ SentBefore(Ev)
    /\ just \cup Justified(Ev) = 1..Len(Ev.sent)
    /\ l' = l + 1
    /\ just' = {}
    /\ UNCHANGED vars
    /\ IF l > TLCGet(1)
       THEN /\ TLCSet(1, l)
            /\ IF l = Len(TraceLog) THEN PrintT(<<"trace accepted", l>>)
               ELSE PrintT(<<"matched", l>>)
       ELSE TRUE

TraceNext == Step \/ Done

TraceSpec == TraceInit /\ [][TraceNext]_traceVars

\* TLC reports the furthest event matched when it stops.
=============================================================================
