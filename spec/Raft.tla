-------------------------------- MODULE Raft --------------------------------
(***************************************************************************)
(* The protocol of raft-core, written to be read next to the code.         *)
(*                                                                         *)
(* One node's state is what `Node` keeps (crates/raft-core/src/node.rs):   *)
(* role, term, vote, the log after its snapshot point, the commit index,   *)
(* the votes of a campaign and, on a leader, the match index of each peer. *)
(* Beside it the spec keeps what the node's disk holds (`d*` variables)    *)
(* and the writes handed to the disk but not yet durable (`pend`): the     *)
(* core's `Action::Persist` queue and the runtime's `Input::Persisted`.    *)
(*                                                                         *)
(* Messages live in a set that only grows: a message may be delivered any *)
(* number of times, in any order, or never.                               *)
(*                                                                         *)
(* Sending is separate from deciding. A node decides in memory (grants a  *)
(* vote, appends entries) and the answer that promises that decision is   *)
(* sendable only once the disk holds it (`CanSend`): the durability gate   *)
(* of `Node::send` / `Node::persisted` (Raft thesis 3.8).                  *)
(*                                                                         *)
(* Every action names the function it models. Where the code makes a      *)
(* choice that only matters for liveness or speed (when to send, whether   *)
(* to refuse a vote it could grant, when to step down) the spec lets       *)
(* either happen.                                                          *)
(***************************************************************************)
EXTENDS Naturals, Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Server,        \* node ids
    Nil            \* "no node" (a vote for nobody, no leader)

Roles == {"Follower", "PreCandidate", "Candidate", "Leader"}

(* A membership (membership.rs `Membership`): incoming voters `v`, outgoing *)
(* voters `o` (non-empty only in the joint phase) and learners `l`.         *)
NoCfg == [v |-> {}, o |-> {}, l |-> {}]
IsCfg(c) == c.v # {}
IsJoint(c) == c.o # {}
Voters(c) == c.v \cup c.o
Members(c) == c.v \cup c.o \cup c.l

(* membership.rs `vote_result` / `quorum_index`: a majority of each half. *)
Majority(S, V) == 2 * Cardinality(S \cap V) > Cardinality(V)
Quorum(S, c) == Majority(S, c.v) /\ (c.o = {} \/ Majority(S, c.o))

(* An entry (log.rs `Entry`): its term and, for a membership entry, the   *)
(* membership; commands and no-ops carry NoCfg.                           *)
(* A snapshot point (log.rs `SnapshotMeta`): index, term, membership.      *)

VARIABLES
    up,          \* the node is running (not crashed)
    role,        \* Node::role
    term,        \* Node::term
    vote,        \* Node::vote
    snap,        \* Node::snapshot: the snapshot point
    log,         \* Node::log: entries after the snapshot point
    commit,      \* Node::commit
    votes,       \* Node::votes (granted ones): PreVote or Vote campaign
    match,       \* leader: Progress::match_index of each peer
    ackable,     \* per node, <<term, index, entry term>> for every point of its log known
                 \* to match the leader of that term (see HandleAppend, Ack)
    installing,  \* Node::installing: a snapshot being installed, or NoSnap
    dterm, dvote, dcommit, dsnap, dlog,   \* the disk (sim storage.rs `Durable`)
    pend,        \* writes not yet durable, oldest first (Action::Persist not yet synced)
    dinst,       \* snapshots the runtime installed and recorded (sim storage.rs `installed`)
    msgs,        \* every message ever sent
    elected,     \* history: <<term, node>> for every election won
    chosen       \* history: <<index, term>> of every entry some node knew committed

NoSnap == [index |-> 0, term |-> 0, cfg |-> NoCfg]

nodeVars == <<up, role, term, vote, snap, log, commit, votes, match, ackable, installing>>
diskVars == <<dterm, dvote, dcommit, dsnap, dlog, pend, dinst>>
vars == <<nodeVars, diskVars, msgs, elected, chosen>>

Max(a, b) == IF a > b THEN a ELSE b
Min(a, b) == IF a < b THEN a ELSE b
MaxOf(S) == CHOOSE x \in S : \A y \in S : x >= y

----------------------------------------------------------------------------
(* Log accessors (log.rs `RaftLog`).                                        *)

LastIndex(n) == snap[n].index + Len(log[n])
LastTerm(n) == IF log[n] = <<>> THEN snap[n].term ELSE log[n][Len(log[n])].term
\* The term at i, for snap.index <= i <= LastIndex; -1 where unknown (compacted or absent).
TermAt(n, i) ==
    IF i = snap[n].index THEN snap[n].term
    ELSE IF i > snap[n].index /\ i <= LastIndex(n) THEN log[n][i - snap[n].index].term
    ELSE -1
EntryAt(n, i) == log[n][i - snap[n].index]
\* Slice of entries lo..hi (snap.index < lo, hi <= LastIndex).
Entries(n, lo, hi) == SubSeq(log[n], lo - snap[n].index, hi - snap[n].index)

\* The membership in effect: the latest in the log (reconfig.rs `rebuild_membership`).
RECURSIVE LastCfgPos(_, _)
\* The position of the last membership entry of sequence es at or before i (0: none).
LastCfgPos(es, i) == IF i = 0 THEN 0 ELSE IF IsCfg(es[i].cfg) THEN i ELSE LastCfgPos(es, i - 1)
CfgOfLog(s, es) ==
    LET i == LastCfgPos(es, Len(es))
    IN IF i = 0 THEN s.cfg ELSE es[i].cfg
Cfg(n) == CfgOfLog(snap[n], log[n])
\* The membership at index i (reconfig.rs `membership_at`).
CfgAt(n, i) == CfgOfLog(snap[n], SubSeq(log[n], 1, i - snap[n].index))
\* Index of the latest membership entry in the log, or the snapshot point.
CfgIndex(n) == snap[n].index + LastCfgPos(log[n], Len(log[n]))

\* log.rs `is_up_to_date` (Raft 5.4.1).
UpToDate(n, lastIdx, lastTrm) ==
    lastTrm > LastTerm(n) \/ (lastTrm = LastTerm(n) /\ lastIdx >= LastIndex(n))

\* The durable log's term at i (sim storage.rs `Durable::term`), -1 where unknown.
DTermAt(n, i) ==
    IF i = dsnap[n].index THEN dsnap[n].term
    ELSE IF i > dsnap[n].index /\ i <= dsnap[n].index + Len(dlog[n])
         THEN dlog[n][i - dsnap[n].index].term
    ELSE -1
\* The disk holds the node's entries up to k (or a snapshot covering k, which only ever
\* covers committed entries).
DurableUpTo(n, k) == k <= dsnap[n].index \/ (DTermAt(n, k) # -1 /\ DTermAt(n, k) = TermAt(n, k))
\* The highest index known to match the current term's leader (replication.rs
\* `handle_append`'s acknowledgement): 0 until an append of this term matched.
Ack(n) == MaxOf({0} \cup {p[2] : p \in {q \in ackable[n] : q[1] = term[n]}})
\* Record that the log up to i (entry term t there) matches this term's leader. Earlier
\* terms' points are kept: a held answer of an earlier term is released by them (CanSend).
AckTo(n, i, t) ==
    IF i <= Ack(n) THEN ackable ELSE [ackable EXCEPT ![n] = @ \cup {<<term[n], i, t>>}]
\* An acknowledgement of term t up to i, decided while the node was in term t and held
\* until the disk had it, may go out after the node moved on: the disk is still at a
\* write of term t (node.rs `covering_persist_seq`: the write that makes the decision
\* durable, or a later one of that term) and holds a point known to match t's leader at
\* or beyond i (the same entry term there, so by log matching the whole prefix).
HeldAckDurable(n, t, i) ==
    /\ dterm[n] = t
    /\ \E p \in ackable[n] :
          /\ p[1] = t /\ p[2] >= i
          /\ \/ p[2] <= dsnap[n].index
             \/ DTermAt(n, p[2]) = p[3]

\* node.rs `stable_index`: the leader's own acknowledgement for the commit rule.
SelfMatch(n) ==
    LET k == Min(dsnap[n].index + Len(dlog[n]), LastIndex(n))
    IN IF DurableUpTo(n, k) THEN k
       ELSE MaxOf({i \in 0..k : DurableUpTo(n, i)})

\* What one write makes durable: the whole in-memory state after a step.
MemState(n) == [term |-> term'[n], vote |-> vote'[n], commit |-> commit'[n],
                snap |-> snap'[n], log |-> log'[n]]
\* Queue the step's changes for the disk (node.rs `emit_persist`), if it changed any.
Dirty(n) ==
    IF term'[n] # term[n] \/ vote'[n] # vote[n] \/ snap'[n] # snap[n] \/ log'[n] # log[n]
    THEN pend' = [pend EXCEPT ![n] = Append(@, MemState(n))]
    ELSE pend' = pend

\* Record, as history, the entries a node now knows committed, with their terms in
\* `newLog`, its log after the step (an append that commits what it brings holds those
\* entries only then).
ChosenFrom(n, newLog) ==
    chosen' = chosen \cup
        {<<i, newLog[i - snap[n].index].term>> :
         i \in {j \in (commit[n] + 1)..commit'[n] : j > snap[n].index /\ j - snap[n].index <= Len(newLog)}}
\* The same for a step that leaves the log as it is.
Chosen(n) == ChosenFrom(n, log[n])

----------------------------------------------------------------------------
(* Messages (message.rs `MessageBody`), as records. Fields not listed for  *)
(* a type are not modelled (heartbeat rounds, read contexts, hints).       *)

RV(n, p, pre, t) ==
    [type |-> "RV", from |-> n, to |-> p, term |-> t, pre |-> pre,
     lastIndex |-> LastIndex(n), lastTerm |-> LastTerm(n)]

\* May node n send message m now? The sender's side of every message kind. A reply that
\* promises durable state (vote grant, append ack, snapshot ack) is sendable only once
\* the disk holds what it promises: node.rs `send`, the `gate` on VoteResponse,
\* AppendResponse and InstallSnapshotResponse.
CanSend(n, m) ==
    /\ m.from = n /\ m.to # n /\ up[n]
    /\ CASE m.type = "RV" ->                      \* election.rs `campaign`
              \/ /\ role[n] = "PreCandidate" /\ m.pre /\ m.term = term[n] + 1
                 /\ m.lastIndex = LastIndex(n) /\ m.lastTerm = LastTerm(n)
              \/ /\ role[n] = "Candidate" /\ ~m.pre /\ m.term = term[n]
                 /\ m.lastIndex = LastIndex(n) /\ m.lastTerm = LastTerm(n)
         [] m.type = "RVR" ->                     \* election.rs `handle_vote_request`
              IF m.pre THEN m.term >= term[n]     \* PreVote changes nothing: any answer
              ELSE \* A held answer may leave after the node moved to a later term; a
                   \* grant only while the disk holds that vote of that term.
                   /\ m.term <= term[n]
                   /\ m.granted => /\ m.term = term[n] => vote[n] = m.to
                                   /\ dterm[n] = m.term /\ dvote[n] = m.to
         [] m.type = "AE" ->                      \* replication.rs `replicate_to`
              /\ role[n] = "Leader" /\ m.term = term[n]
              /\ m.prevIndex >= snap[n].index /\ m.prevIndex <= LastIndex(n)
              /\ m.prevTerm = TermAt(n, m.prevIndex)
              /\ m.prevIndex + Len(m.entries) <= LastIndex(n)
              /\ m.entries = Entries(n, m.prevIndex + 1, m.prevIndex + Len(m.entries))
              /\ m.commit = commit[n]
         [] m.type = "AER" ->                     \* replication.rs `handle_append`
              /\ m.term <= term[n]                 \* held answers: see HeldAckDurable
              /\ m.success => IF m.term = term[n]
                              THEN /\ m.index <= Ack(n)
                                   /\ dterm[n] = m.term /\ DurableUpTo(n, m.index)
                              ELSE HeldAckDurable(n, m.term, m.index)
         [] m.type = "HB" ->                      \* replication.rs `broadcast_heartbeat`
              /\ role[n] = "Leader" /\ m.term = term[n]
              /\ m.commit <= Min(commit[n], match[n][m.to])
         [] m.type = "IS" ->                      \* replication.rs `replicate_to` (snapshot)
              /\ role[n] = "Leader" /\ m.term = term[n]
              /\ m.index = snap[n].index /\ m.sterm = snap[n].term /\ m.cfg = snap[n].cfg
         [] m.type = "ISR" ->                     \* reconfig.rs `snapshot_installed`
              /\ m.term <= term[n]
              /\ m.success => IF m.term = term[n]
                              THEN /\ m.index <= Ack(n)
                                   /\ dterm[n] = m.term /\ DurableUpTo(n, m.index)
                              ELSE HeldAckDurable(n, m.term, m.index)
         [] m.type = "TN" ->                      \* node.rs leader transfer
              role[n] = "Leader" /\ m.term = term[n]
         [] OTHER ->                              \* heartbeat and read-index answers
              m.term = term[n]

Send(m) == msgs' = msgs \cup {m}

----------------------------------------------------------------------------
(* Elections: election.rs.                                                  *)

\* node.rs `tick` -> election.rs `campaign(PreVote)`: an election timeout.
\* (`can_campaign`: a voter of its membership, not installing a snapshot.)
Timeout(n) ==
    /\ up[n] /\ role[n] # "Leader" /\ n \in Voters(Cfg(n)) /\ installing[n] = NoSnap
    /\ role' = [role EXCEPT ![n] = "PreCandidate"]
    /\ votes' = [votes EXCEPT ![n] = {n}]
    /\ UNCHANGED <<up, term, vote, snap, log, commit, match, ackable, installing,
                   diskVars, msgs, elected, chosen>>

\* election.rs `campaign(Election | Transfer)`: a new term, voting for itself. Reached
\* from a won PreVote (`tally`) or a leader's TimeoutNow (`handle_timeout_now`).
BecomeCandidate(n) ==
    /\ term' = [term EXCEPT ![n] = term[n] + 1]
    /\ vote' = [vote EXCEPT ![n] = n]
    /\ role' = [role EXCEPT ![n] = "Candidate"]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ ackable' = ackable   \* points are per term: none is known for the new one

\* election.rs `tally` for PreVote: a quorum would vote for us.
WinPreVote(n) ==
    /\ up[n] /\ role[n] = "PreCandidate" /\ Quorum(votes[n], Cfg(n))
    /\ BecomeCandidate(n)
    /\ UNCHANGED <<up, snap, log, commit, match, installing>>
    /\ UNCHANGED <<dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* election.rs `handle_timeout_now`: the leader we follow hands leadership to us.
HandleTimeoutNow(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type = "TN" /\ m.term = term[n]
    /\ role[n] = "Follower" /\ n \in Voters(Cfg(n)) /\ installing[n] = NoSnap
    /\ BecomeCandidate(n)
    /\ UNCHANGED <<up, snap, log, commit, match, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* node.rs `deliver`: a candidate's own vote counts once it is durable.
SelfVote(n) ==
    /\ up[n] /\ role[n] = "Candidate" /\ vote[n] = n
    /\ dterm[n] = term[n] /\ dvote[n] = n
    /\ votes' = [votes EXCEPT ![n] = @ \cup {n}]
    /\ UNCHANGED <<up, role, term, vote, snap, log, commit, match, ackable, installing,
                   diskVars, msgs, elected, chosen>>

\* node.rs `handle_message`: a message of a higher term makes us a follower in it,
\* except a PreVote request and a granted PreVote answer, which carry the term the
\* candidate would campaign in. (A node inside its leader lease ignores the request
\* instead: `in_lease`; the spec lets any message be ignored.)
UpdateTerm(n, m) ==
    /\ up[n] /\ m.to = n /\ m.term > term[n]
    /\ ~(m.type = "RV" /\ m.pre)
    /\ ~(m.type = "RVR" /\ m.pre /\ m.granted)
    /\ term' = [term EXCEPT ![n] = m.term]
    /\ vote' = [vote EXCEPT ![n] = Nil]
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ ackable' = ackable   \* points are per term: none is known for the new one
    /\ UNCHANGED <<up, snap, log, commit, match, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* election.rs `handle_vote_request`: grant a vote in memory. The answer goes out once
\* the vote is durable (CanSend "RVR"). Refusing changes nothing and is always allowed.
GrantVote(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type = "RV" /\ ~m.pre /\ m.term = term[n]
    /\ vote[n] \in {Nil, m.from}
    /\ UpToDate(n, m.lastIndex, m.lastTerm)
    /\ vote' = [vote EXCEPT ![n] = m.from]
    /\ UNCHANGED <<up, role, term, snap, log, commit, votes, match, ackable, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* election.rs `handle_vote_response`: count a granted (pre-)vote.
HandleVoteResponse(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type = "RVR" /\ m.granted
    /\ \/ role[n] = "PreCandidate" /\ m.pre /\ m.term = term[n] + 1
       \/ role[n] = "Candidate" /\ ~m.pre /\ m.term = term[n]
    /\ votes' = [votes EXCEPT ![n] = @ \cup {m.from}]
    /\ UNCHANGED <<up, role, term, vote, snap, log, commit, match, ackable, installing,
                   diskVars, msgs, elected, chosen>>

\* election.rs `become_leader`: a quorum of durable votes; append the no-op of the term.
BecomeLeader(n) ==
    /\ up[n] /\ role[n] = "Candidate" /\ Quorum(votes[n], Cfg(n))
    /\ role' = [role EXCEPT ![n] = "Leader"]
    /\ match' = [match EXCEPT ![n] = [p \in Server |-> 0]]
    /\ log' = [log EXCEPT ![n] = Append(@, [term |-> term[n], cfg |-> NoCfg])]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ elected' = elected \cup {<<term[n], n>>}
    /\ UNCHANGED <<up, term, vote, snap, commit, ackable, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, chosen>>
    /\ Dirty(n)

\* Giving up a role without a new term: CheckQuorum (node.rs `tick`), a lost election
\* (`tally`), a leader removed by C_new (`advance_committed_membership`), a candidate
\* that hears from the leader of its term (`follow`).
StepDown(n) ==
    /\ up[n] /\ role[n] # "Follower"
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ UNCHANGED <<up, term, vote, snap, log, commit, match, ackable, installing,
                   diskVars, msgs, elected, chosen>>

----------------------------------------------------------------------------
(* Replication: replication.rs.                                             *)

\* replication.rs `propose` / `append_as_leader`: a client command.
ClientRequest(n) ==
    /\ up[n] /\ role[n] = "Leader"
    /\ log' = [log EXCEPT ![n] = Append(@, [term |-> term[n], cfg |-> NoCfg])]
    /\ UNCHANGED <<up, role, term, vote, snap, commit, votes, match, ackable, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* The log after accepting `ents` right after `prev` (which matches): entries already
\* held are kept, the first that differs cuts the log there (log.rs `truncate_from`).
Merge(n, prev, ents) ==
    LET base == prev - snap[n].index
        diff == {k \in 1..Len(ents) : base + k > Len(log[n]) \/ log[n][base + k].term # ents[k].term}
        k0 == IF diff = {} THEN 0 ELSE CHOOSE k \in diff : \A j \in diff : k <= j
    IN IF k0 = 0 THEN log[n]
       ELSE SubSeq(log[n], 1, base + k0 - 1) \o SubSeq(ents, k0, Len(ents))
FirstConflict(n, prev, ents) ==
    LET base == prev - snap[n].index
        diff == {k \in 1..Len(ents) : base + k <= Len(log[n]) /\ log[n][base + k].term # ents[k].term}
    IN IF diff = {} THEN 0 ELSE prev + (CHOOSE k \in diff : \A j \in diff : k <= j)

\* replication.rs `handle_append`: a follower (or candidate, which follows) of the
\* message's term accepts entries that continue its log at (prevIndex, prevTerm). An
\* append starting below the commit index is re-anchored at it. The acknowledgement
\* (AER with index prev + |entries|) is sent once durable (CanSend "AER").
HandleAppend(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type = "AE" /\ m.term = term[n]
    /\ role[n] # "Leader" /\ installing[n] = NoSnap
    /\ UNCHANGED <<up, term, vote, snap, match, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected>>
    /\ LET skip == commit[n] - m.prevIndex
           prev == IF skip > 0 THEN commit[n] ELSE m.prevIndex
           ents == IF skip > 0 THEN SubSeq(m.entries, skip + 1, Len(m.entries)) ELSE m.entries
           prevTerm == IF skip > 0 THEN m.entries[skip].term ELSE m.prevTerm
           last == m.prevIndex + Len(m.entries)
       IN IF skip > 0 /\ skip >= Len(m.entries)
          THEN \* everything is below our commit index: just acknowledge it
               /\ role' = [role EXCEPT ![n] = "Follower"]
               /\ votes' = [votes EXCEPT ![n] = {}]
               /\ ackable' = AckTo(n, commit[n], TermAt(n, commit[n]))
               /\ UNCHANGED <<log, commit, pend, chosen>>
          ELSE /\ prev <= LastIndex(n) /\ TermAt(n, prev) = prevTerm
               /\ LET c == FirstConflict(n, prev, ents) IN c = 0 \/ c > commit[n]
               /\ role' = [role EXCEPT ![n] = "Follower"]
               /\ votes' = [votes EXCEPT ![n] = {}]
               /\ log' = [log EXCEPT ![n] = Merge(n, prev, ents)]
               /\ commit' = [commit EXCEPT ![n] = Max(@, Min(m.commit, last))]
               /\ ackable' = AckTo(n, last, IF ents = <<>> THEN prevTerm ELSE ents[Len(ents)].term)
               /\ Dirty(n)
               /\ ChosenFrom(n, Merge(n, prev, ents))

\* replication.rs `handle_append_response`: a durable acknowledgement raises match.
HandleAppendResponse(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type \in {"AER", "ISR"} /\ m.success
    /\ m.term = term[n] /\ role[n] = "Leader" /\ m.index <= LastIndex(n)
    /\ m.from \in Members(Cfg(n))
    /\ match' = [match EXCEPT ![n][m.from] = Max(@, m.index)]
    /\ UNCHANGED <<up, role, term, vote, snap, log, commit, votes, ackable, installing,
                   diskVars, msgs, elected, chosen>>

\* replication.rs `handle_heartbeat`: the leader caps the commit index at our match.
HandleHeartbeat(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type = "HB" /\ m.term = term[n]
    /\ role[n] # "Leader"
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ commit' = [commit EXCEPT ![n] = Max(@, Min(m.commit, LastIndex(n)))]
    /\ Chosen(n)
    /\ UNCHANGED <<up, term, vote, snap, log, match, ackable, installing,
                   diskVars, msgs, elected>>

\* replication.rs `maybe_commit`: the commit rule of 5.4.2. An index is committed once
\* a quorum of every half of the membership holds it durably (the leader counts its own
\* disk, `stable_index`) and its entry is of the leader's term.
AdvanceCommit(n) ==
    /\ up[n] /\ role[n] = "Leader"
    /\ LET cfg == Cfg(n)
           acked == [p \in Server |-> IF p = n THEN SelfMatch(n) ELSE match[n][p]]
           top == Min(LastIndex(n), MaxOf({acked[p] : p \in Server}))
       IN \E c \in (commit[n] + 1)..top :
             /\ TermAt(n, c) = term[n]
             /\ Quorum({p \in Server : acked[p] >= c}, cfg)
             /\ commit' = [commit EXCEPT ![n] = c]
    /\ Chosen(n)
    /\ UNCHANGED <<up, role, term, vote, snap, log, votes, match, ackable, installing,
                   diskVars, msgs, elected>>

----------------------------------------------------------------------------
(* Membership changes: reconfig.rs (joint consensus, thesis 4.3).           *)

\* reconfig.rs `change_membership`: one change at a time, only once the leader has
\* committed an entry of its term (thesis 4.1) and the membership in effect is
\* committed and not joint. `c` is the membership appended: joint when the voters change,
\* otherwise only learners change.
ChangeMembership(n, c) ==
    /\ up[n] /\ role[n] = "Leader"
    /\ LET cur == Cfg(n) IN
       /\ ~IsJoint(cur) /\ CfgIndex(n) <= commit[n] /\ TermAt(n, commit[n]) = term[n]
       /\ IsCfg(c) /\ c # cur
       /\ \/ c.o = {} /\ c.v = cur.v
          \/ c.o = cur.v /\ c.v # cur.v
       /\ c.l \cap Voters(c) = {}
    /\ log' = [log EXCEPT ![n] = Append(@, [term |-> term[n], cfg |-> c])]
    /\ UNCHANGED <<up, role, term, vote, snap, commit, votes, match, ackable, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* reconfig.rs `advance_committed_membership` / `finish_committed_joint`: once the joint
\* membership is committed the leader appends C_new.
LeaveJoint(n) ==
    /\ up[n] /\ role[n] = "Leader"
    /\ IsJoint(Cfg(n)) /\ CfgIndex(n) <= commit[n]
    /\ log' = [log EXCEPT ![n] = Append(@, [term |-> term[n],
                                           cfg |-> [v |-> Cfg(n).v, o |-> {}, l |-> Cfg(n).l]])]
    /\ UNCHANGED <<up, role, term, vote, snap, commit, votes, match, ackable, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

----------------------------------------------------------------------------
(* Snapshots: reconfig.rs.                                                  *)

\* reconfig.rs `snapshot_created`: the state machine has a snapshot at i (applied, so
\* committed); the log before it is compacted.
Compact(n, i) ==
    /\ up[n] /\ i > snap[n].index /\ i <= commit[n]
    /\ snap' = [snap EXCEPT ![n] = [index |-> i, term |-> TermAt(n, i), cfg |-> CfgAt(n, i)]]
    /\ log' = [log EXCEPT ![n] = SubSeq(@, i - snap[n].index + 1, Len(@))]
    /\ UNCHANGED <<up, role, term, vote, commit, votes, match, ackable, installing,
                   dterm, dvote, dcommit, dsnap, dlog, dinst, msgs, elected, chosen>>
    /\ Dirty(n)

\* reconfig.rs `handle_install_snapshot`: start installing a snapshot past our commit
\* index, or acknowledge one we already cover.
HandleInstallSnapshot(n, m) ==
    /\ up[n] /\ m.to = n /\ m.type = "IS" /\ m.term = term[n]
    /\ role[n] # "Leader"
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ IF m.index <= commit[n]
       THEN ackable' = AckTo(n, commit[n], TermAt(n, commit[n])) /\ UNCHANGED installing
       ELSE /\ installing[n] = NoSnap
            /\ installing' = [installing EXCEPT ![n] = [index |-> m.index, term |-> m.sterm, cfg |-> m.cfg]]
            /\ UNCHANGED ackable
    /\ UNCHANGED <<up, term, vote, snap, log, commit, match, diskVars, msgs, elected, chosen>>

\* reconfig.rs `snapshot_installed`: the runtime restored the state machine. Keep the log
\* after the snapshot if it agrees with it, else replace the log (Raft 7).
FinishInstall(n) ==
    /\ up[n] /\ installing[n] # NoSnap
    /\ LET s == installing[n] IN
       /\ IF TermAt(n, s.index) = s.term
          THEN IF s.index > snap[n].index
               THEN /\ snap' = [snap EXCEPT ![n] = s]
                    /\ log' = [log EXCEPT ![n] = SubSeq(@, s.index - snap[n].index + 1, Len(@))]
               ELSE UNCHANGED <<snap, log>>
          ELSE /\ snap' = [snap EXCEPT ![n] = s]
               /\ log' = [log EXCEPT ![n] = <<>>]
       /\ commit' = [commit EXCEPT ![n] = Max(@, s.index)]
       /\ ackable' = AckTo(n, s.index, s.term)
       /\ chosen' = chosen \cup {<<s.index, s.term>>}
       /\ dinst' = [dinst EXCEPT ![n] = @ \cup {s}]
    /\ installing' = [installing EXCEPT ![n] = NoSnap]
    /\ UNCHANGED <<up, role, term, vote, votes, match, dterm, dvote, dcommit, dsnap, dlog,
                   msgs, elected>>
    /\ Dirty(n)

\* The runtime could not install it (`snapshot_installed` with success false).
AbortInstall(n) ==
    /\ up[n] /\ installing[n] # NoSnap
    /\ installing' = [installing EXCEPT ![n] = NoSnap]
    /\ UNCHANGED <<up, role, term, vote, snap, log, commit, votes, match, ackable,
                   diskVars, msgs, elected, chosen>>

----------------------------------------------------------------------------
(* The disk: node.rs `emit_persist` / `persisted`, sim storage.rs.          *)

Write(n, w) ==
    /\ dterm' = [dterm EXCEPT ![n] = w.term]
    /\ dvote' = [dvote EXCEPT ![n] = w.vote]
    /\ dcommit' = [dcommit EXCEPT ![n] = w.commit]
    /\ dsnap' = [dsnap EXCEPT ![n] = w.snap]
    /\ dlog' = [dlog EXCEPT ![n] = w.log]

\* The oldest pending write becomes durable (an fsync; `Input::Persisted`).
Persist(n) ==
    /\ pend[n] # <<>>
    /\ Write(n, Head(pend[n]))
    /\ pend' = [pend EXCEPT ![n] = Tail(@)]
    /\ UNCHANGED <<nodeVars, dinst, msgs, elected, chosen>>

\* A crash: volatile state is gone; pending writes are lost, except that some may have
\* reached the disk whole and the next one torn (sim.rs `crash`): a torn write keeps its
\* entries up to some point, never its hard state (storage.rs `apply_torn`).
TornLogs(base, w) ==
    LET common == {k \in 0..Min(Len(base), Len(w)) : \A j \in 1..k : base[j] = w[j]}
        c == MaxOf(common)
    IN {base} \cup {SubSeq(w, 1, k) : k \in c..Len(w)}
\* The disk after the first j pending writes (j = 0: as it is).
DiskAfter(n, j) ==
    IF j = 0 THEN [term |-> dterm[n], vote |-> dvote[n], commit |-> dcommit[n],
                   snap |-> dsnap[n], log |-> dlog[n]]
    ELSE pend[n][j]
Crash(n) ==
    /\ up[n]
    /\ up' = [up EXCEPT ![n] = FALSE]
    /\ \E j \in 0..Len(pend[n]) :
          \/ Write(n, DiskAfter(n, j))
          \/ /\ j < Len(pend[n]) /\ pend[n][j + 1].snap = DiskAfter(n, j).snap
             /\ \E l \in TornLogs(DiskAfter(n, j).log, pend[n][j + 1].log) :
                   Write(n, [DiskAfter(n, j) EXCEPT !.log = l])
    /\ pend' = [pend EXCEPT ![n] = <<>>]
    /\ UNCHANGED <<role, term, vote, snap, log, commit, votes, match, ackable, installing,
                   dinst, msgs, elected, chosen>>

\* node.rs `Node::new` from the disk. A torn write may have left entries of a term the
\* stored hard state has not reached: the node adopts that term with no vote. The commit
\* index restarts from the stored hint (or what the state machine had applied).
\* The disk as a restart finds it: as it is, or with a snapshot the runtime installed
\* (whose point the core had not yet persisted) recorded first (storage.rs `restore`).
Restored(n) ==
    {[term |-> dterm[n], snap |-> dsnap[n], log |-> dlog[n]]} \cup
    {[term |-> Max(dterm[n], s.term), snap |-> s,
      log |-> IF DTermAt(n, s.index) = s.term
              THEN SubSeq(dlog[n], s.index - dsnap[n].index + 1, Len(dlog[n]))
              ELSE <<>>] : s \in {x \in dinst[n] : x.index > dsnap[n].index}}
Restart(n) ==
    /\ ~up[n]
    /\ \E r \in Restored(n) :
       LET lt == IF r.log = <<>> THEN r.snap.term ELSE r.log[Len(r.log)].term
           last == r.snap.index + Len(r.log)
           hsVote == IF r.term = dterm[n] THEN dvote[n] ELSE Nil
       IN /\ term' = [term EXCEPT ![n] = Max(r.term, lt)]
          /\ vote' = [vote EXCEPT ![n] = IF r.term < lt THEN Nil ELSE hsVote]
          /\ snap' = [snap EXCEPT ![n] = r.snap]
          /\ log' = [log EXCEPT ![n] = r.log]
          /\ \E c \in r.snap.index..last :
                /\ c <= Max(dcommit[n], Max(commit[n], r.snap.index))
                /\ commit' = [commit EXCEPT ![n] = c]
          /\ dterm' = [dterm EXCEPT ![n] = r.term]
          /\ dvote' = [dvote EXCEPT ![n] = hsVote]
          /\ dsnap' = [dsnap EXCEPT ![n] = r.snap]
          /\ dlog' = [dlog EXCEPT ![n] = r.log]
    /\ up' = [up EXCEPT ![n] = TRUE]
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ votes' = [votes EXCEPT ![n] = {}]
    /\ match' = [match EXCEPT ![n] = [p \in Server |-> 0]]
    /\ ackable' = [ackable EXCEPT ![n] = {}]   \* volatile, as are the held answers
    /\ installing' = [installing EXCEPT ![n] = NoSnap]
    \* The first write of a start carries the (new incarnation's) hard state.
    /\ pend' = [pend EXCEPT ![n] = <<MemState(n)>>]
    /\ UNCHANGED <<dcommit, dinst, msgs, elected, chosen>>

----------------------------------------------------------------------------
(* The whole system.                                                       *)

InitCfg(voters) == [v |-> voters, o |-> {}, l |-> {}]

\* A fresh node (node.rs `RestoredState::bootstrap`): its snapshot point 0 holds the
\* initial membership.
InitWith(cfgOf) ==
    /\ up = [n \in Server |-> TRUE]
    /\ role = [n \in Server |-> "Follower"]
    /\ term = [n \in Server |-> 0]
    /\ vote = [n \in Server |-> Nil]
    /\ snap = [n \in Server |-> [index |-> 0, term |-> 0, cfg |-> cfgOf[n]]]
    /\ log = [n \in Server |-> <<>>]
    /\ commit = [n \in Server |-> 0]
    /\ votes = [n \in Server |-> {}]
    /\ match = [n \in Server |-> [p \in Server |-> 0]]
    /\ ackable = [n \in Server |-> {}]
    /\ installing = [n \in Server |-> NoSnap]
    /\ dterm = [n \in Server |-> 0]
    /\ dvote = [n \in Server |-> Nil]
    /\ dcommit = [n \in Server |-> 0]
    /\ dsnap = [n \in Server |-> [index |-> 0, term |-> 0, cfg |-> cfgOf[n]]]
    /\ dlog = [n \in Server |-> <<>>]
    /\ pend = [n \in Server |-> <<>>]
    /\ dinst = [n \in Server |-> {}]
    /\ msgs = {}
    /\ elected = {}
    /\ chosen = {}

\* The messages n could send now, for model checking: one of each kind the state allows
\* (a leader sends its whole suffix, or an empty append, from any point it holds).
Sendable(n) ==
    LET peers == Server \ {n}
        cfg == Cfg(n)
    IN {m \in
          {RV(n, p, role[n] = "PreCandidate",
              IF role[n] = "PreCandidate" THEN term[n] + 1 ELSE term[n]) : p \in Voters(cfg) \ {n}}
          \cup {[type |-> "RVR", from |-> n, to |-> r.from, term |-> r.term, pre |-> r.pre,
                 granted |-> TRUE] : r \in {r \in msgs : r.type = "RV" /\ r.to = n
                                        /\ (r.pre => (r.term > term[n] /\ UpToDate(n, r.lastIndex, r.lastTerm)))}}
          \cup UNION {{[type |-> "AE", from |-> n, to |-> p, term |-> term[n], prevIndex |-> i,
                        prevTerm |-> TermAt(n, i), entries |-> e, commit |-> commit[n]] :
                        p \in Members(cfg) \ {n}, e \in {<<>>, Entries(n, i + 1, LastIndex(n))}} :
                       i \in snap[n].index..LastIndex(n)}
          \cup {[type |-> "AER", from |-> n, to |-> p, term |-> term[n], success |-> TRUE,
                 index |-> Ack(n)] : p \in peers}
          \cup {[type |-> "HB", from |-> n, to |-> p, term |-> term[n],
                 commit |-> Min(commit[n], match[n][p])] : p \in Members(cfg) \ {n}}
          \cup {[type |-> "IS", from |-> n, to |-> p, term |-> term[n], index |-> snap[n].index,
                 sterm |-> snap[n].term, cfg |-> snap[n].cfg] : p \in Members(cfg) \ {n}}
          \cup {[type |-> "ISR", from |-> n, to |-> p, term |-> term[n], success |-> TRUE,
                 index |-> Ack(n)] : p \in peers}
          \cup {[type |-> "TN", from |-> n, to |-> p, term |-> term[n]] : p \in Voters(cfg) \ {n}}
        : CanSend(n, m)}

SendSomething(n) ==
    /\ up[n]
    /\ \E m \in Sendable(n) : m \notin msgs /\ Send(m)
    /\ UNCHANGED <<nodeVars, diskVars, elected, chosen>>

\* Receiving a message: whichever handler its kind and our state select.
Receive(n) ==
    \E m \in msgs :
        /\ m.to = n
        /\ \/ UpdateTerm(n, m)
           \/ GrantVote(n, m)
           \/ HandleVoteResponse(n, m)
           \/ HandleAppend(n, m)
           \/ HandleAppendResponse(n, m)
           \/ HandleHeartbeat(n, m)
           \/ HandleInstallSnapshot(n, m)
           \/ HandleTimeoutNow(n, m)

\* Everything one node may do by itself, other than receiving and sending.
Local(n, cfgs) ==
    \/ Timeout(n) \/ WinPreVote(n) \/ SelfVote(n) \/ BecomeLeader(n) \/ StepDown(n)
    \/ ClientRequest(n) \/ AdvanceCommit(n) \/ LeaveJoint(n)
    \/ \E c \in cfgs : ChangeMembership(n, c)
    \/ \E i \in (snap[n].index + 1)..commit[n] : Compact(n, i)
    \/ FinishInstall(n) \/ AbortInstall(n)
    \/ Persist(n) \/ Crash(n) \/ Restart(n)

----------------------------------------------------------------------------
(* Properties.                                                              *)

\* At most one leader per term (Raft 5.2).
ElectionSafety ==
    \A a, b \in elected : a[1] = b[1] => a[2] = b[2]

\* Two logs with the same entry term at an index agree on every earlier index both hold
\* (Raft 5.3). Checked over the logs in memory and on disk.
LogOf(n) == [s |-> snap[n], l |-> log[n]]
DLogOf(n) == [s |-> dsnap[n], l |-> dlog[n]]
LTerm(x, i) == IF i = x.s.index THEN x.s.term
               ELSE IF i > x.s.index /\ i <= x.s.index + Len(x.l) THEN x.l[i - x.s.index].term
               ELSE -1
LEntry(x, i) == IF i = x.s.index THEN [term |-> x.s.term, cfg |-> NoCfg] ELSE x.l[i - x.s.index]
AllLogs == {LogOf(n) : n \in Server} \cup {DLogOf(n) : n \in Server}
\* (Checked at the highest index where the two terms agree: it implies every lower one,
\* and keeps the check linear in the log length for the long logs of trace validation.)
LogMatching ==
    \A x, y \in AllLogs :
        LET same == {i \in 1..Min(x.s.index + Len(x.l), y.s.index + Len(y.l)) :
                        LTerm(x, i) # -1 /\ LTerm(x, i) = LTerm(y, i)}
        IN same # {} =>
            \A j \in 1..MaxOf(same) :
                (j > x.s.index /\ j > y.s.index) => LEntry(x, j) = LEntry(y, j)

\* Every entry known committed is in the log of every leader of a later (or the same)
\* term (Raft 5.4).
LeaderCompleteness ==
    \A n \in Server : (up[n] /\ role[n] = "Leader") =>
        \A c \in chosen : c[2] <= term[n] => (c[1] <= snap[n].index \/ TermAt(n, c[1]) = c[2])

\* No two nodes apply different entries at one index (Raft 5.4.3): one entry term per
\* committed index, and every node's log agrees with it up to its commit index.
StateMachineSafety ==
    /\ Cardinality({c[1] : c \in chosen}) = Cardinality(chosen)   \* one term per index
    /\ \A n \in Server : up[n] =>
          \A c \in chosen : (c[1] > snap[n].index /\ c[1] <= commit[n]) => TermAt(n, c[1]) = c[2]

\* A running node's commit index never decreases.
CommitMonotonic == [][\A n \in Server : (up[n] /\ up'[n]) => commit'[n] >= commit[n]]_vars

TypeOK ==
    /\ role \in [Server -> Roles]
    /\ \A n \in Server : commit[n] <= LastIndex(n) \/ ~up[n]
=============================================================================
