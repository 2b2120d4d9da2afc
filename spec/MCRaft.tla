------------------------------- MODULE MCRaft -------------------------------
(***************************************************************************)
(* Bounded model check of Raft.tla: three nodes, a few terms, short logs,  *)
(* a bounded number of crashes, client commands, snapshots and membership  *)
(* changes. The bounds are constants set in MCRaft.cfg; docs/spec.md       *)
(* records what TLC found at them.                                         *)
(***************************************************************************)
EXTENDS Raft

CONSTANTS MaxTerm, MaxLog, MaxMsgs, MaxCrashes, MaxChanges, MaxCompactions,
          MaxRequests, InitVoters, Changes

\* How much of each bounded kind of step is left.
VARIABLE budget

mcVars == <<vars, budget>>

\* Membership changes to try (bound to `Changes` in the .cfg files): the learner 3 of
\* voters {1, 2} is promoted through the joint membership.
NoChanges == {}
PromoteLearner == {[v |-> {1, 2, 3}, o |-> {1, 2}, l |-> {}]}

MCInit ==
    /\ InitWith([n \in Server |-> [v |-> InitVoters, o |-> {}, l |-> Server \ InitVoters]])
    /\ budget = [crash |-> MaxCrashes, change |-> MaxChanges, compact |-> MaxCompactions,
                 request |-> MaxRequests]

Spend(k) == budget[k] > 0 /\ budget' = [budget EXCEPT ![k] = @ - 1]

MCNext ==
    \E n \in Server :
        \/ Receive(n) /\ UNCHANGED budget
        \/ SendSomething(n) /\ UNCHANGED budget
        \/ \/ Timeout(n) \/ WinPreVote(n) \/ SelfVote(n) \/ BecomeLeader(n) \/ StepDown(n)
           \/ AdvanceCommit(n) \/ LeaveJoint(n) \/ FinishInstall(n) \/ AbortInstall(n)
           \/ Persist(n) \/ Restart(n)
           /\ UNCHANGED budget
        \/ ClientRequest(n) /\ Spend("request")
        \/ Crash(n) /\ Spend("crash")
        \/ (\E c \in Changes : ChangeMembership(n, c)) /\ Spend("change")
        \/ (\E i \in (snap[n].index + 1)..commit[n] : Compact(n, i)) /\ Spend("compact")

MCSpec == MCInit /\ [][MCNext]_mcVars

\* The state space is cut at these bounds. A message, once sent, stays in `msgs` (it
\* may be received any number of times, or never: loss and duplication), so MaxMsgs
\* bounds the messages sent in the whole behaviour.
Bounds ==
    /\ \A n \in Server : term[n] <= MaxTerm /\ LastIndex(n) <= MaxLog /\ Len(pend[n]) <= 2
    /\ Cardinality(msgs) <= MaxMsgs
=============================================================================
