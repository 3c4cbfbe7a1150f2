theory STP_MiniF2F
  imports
    Complex_Main
    "HOL-Library.Code_Target_Numeral"
    "HOL-Library.Sum_of_Squares"
    "HOL-Computational_Algebra.Computational_Algebra"
    "HOL-Number_Theory.Number_Theory"
begin

end
