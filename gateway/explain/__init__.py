"""Undesirable-pixels explanations (Kang, Jung & Lee 2019): which regions hinder
the target class, which support it, which make the model see its competitors;
a fix-it counterfactual and a faithfulness score."""
