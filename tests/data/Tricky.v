(* Header comment. With periods. (* nested. *) "quote. *)" *)
Require Import PeanoNat.
Local Open Scope nat_scope.
Implicit Types n m : nat.

Lemma plus_zero n : n + 0 = n. (* a comment. after *)
Proof.
  (* a comment in the proof. *) induction n; simpl.
  - reflexivity.
  - rewrite IHn. reflexivity.
Qed.

Theorem with_string : "a. b"%string = "a. b"%string -> True.
Proof. intros _. exact I. Qed.

Lemma transparent_one : 1 = 1.
Proof. reflexivity. Defined.

Lemma admitted_one : 2 = 2.
Proof. Admitted.

Local Ltac finish := reflexivity.

Section Vars.
  Variable A : Type.
  Variables (f : A -> A) (g : A -> nat).
  Hypothesis f_id : forall x, f x = x.
  Implicit Type y : A.
  Definition twice x := f (f x).

  Lemma f_twice x : f (f x) = x.
  Proof. rewrite !f_id. finish. Qed.

  Lemma uses_local x : twice x = x.
  Proof. unfold twice. now rewrite !f_id. Qed.

  Let seven := 7.

  Lemma uses_let : seven = 7.
  Proof. reflexivity. Qed.

  Lemma nested_vernacular : True.
  Proof. Opaque Nat.add. exact I. Qed.
End Vars.

Module Inner.
  Lemma inside : 0 + 0 = 0.
  Proof using. reflexivity. Qed.
End Inner.

Module Type Sig.
  Parameter t : Type.
  Lemma in_sig : True.
  Proof. exact I. Qed.
End Sig.

Lemma cites_itself n : n = n.
Proof. exact (Coq.Demo.Tricky.cites_itself n). Qed.

Lemma qualified_tactic n : n + 0 = n.
Proof. Nat.order_pos. Qed.

Lemma by_term : True.
Proof I.

Lemma after_term : 1 + 1 = 2.
Proof. reflexivity. Qed.

Lemma same_line_proof (b : bool) : b = b.
Proof. destruct b.
     - reflexivity.
     - reflexivity.
Qed.

Example defined_example : 1 = 1 := eq_refl.

Example proved_example (n : nat) : n * 1 = n.
Proof. apply Nat.mul_1_r. Qed.

Lemma dotted (n : nat) : n = n.
Proof with auto.
  reflexivity...
Qed.

Lemma after_dots : 2 = 2.
Proof. reflexivity. Qed.
