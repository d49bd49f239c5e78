"""Where the genomes of the binning confirmation sets come from (benchmarks/confirm_set.py):
name -> (kind, package or GitHub repository@commit, path inside, record filter regex or None).
The tables of organisms, sizes and sources are in confirm_set.py's docstring."""

DOC = "usr/share/doc/"

# name -> (kind, package, path inside, record filter regex or None)
GENOMES = {
    "klebsiella_pneumoniae_HS11286": ("deb", "kleborate-examples", DOC + "kleborate/examples/data/Klebs_HS11286.fna.xz", None),
    "streptococcus_suis_SC84": ("deb", "abacas-examples", DOC + "abacas-examples/SS_SC84.dna.gz", None),
    "mycobacterium_leprae_TN": ("deb", "kmer-examples", DOC + "kmer-examples/test_data.tar.gz::GCF_000195855.1_ASM19585v1_genomic.fna", None),
    "plasmodium_falciparum_3D7": ("deb", "smalt-examples", DOC + "smalt/test/data/genome_1.fa.gz", None),
    "plasmodium_knowlesi_H": ("deb", "smalt-examples", DOC + "smalt/test/data/cigar_ref.fa.gz", None),
    "homo_sapiens_chrX_part": ("deb", "smalt-examples", DOC + "smalt/test/data/hs37chrXtrunc.fa.gz", None),
    "gtdbtk_test_genome_2": ("pypi", "gtdbtk==2.8.0", "gtdbtk/tests/data/genomes/genome_2.fna", None),
    "gtdbtk_test_genome_3": ("pypi", "gtdbtk==2.8.0", "gtdbtk/tests/data/genomes/genome_3.fna", None),
}
GVIZ = "moshi4/pygenomeviz-data-v1@ace01b5ca03ca8e8fba9fe2cc1ca9d2f8c981345"
GENOMES_B = {
    "leptospira_kirschneri_H1": ("deb", "any2fasta-examples", DOC + "any2fasta/examples/test.gbk.gz", None),
    "mycoplasma_mycoides_capri_GM12": ("git", GVIZ, "genbank/mycoplasma_mycoides/GCF_000023685.1.gbff", None),
    "mycoplasmoides_alvi_ATCC29626": ("git", "moshi4/pycirclize-data@f61f94aaf8739f4e1a736b49029e18bf6a7ae4ad",
                                      "prokaryote/mycoplasma_alvi.gbk", None),
    "acinetobacter_phage_Apostate": ("git", GVIZ, "genbank/acinetobacter_phage/NC_049491.gbk", None),
    "phage_Agate": ("pypi", "pyrodigal-gv==0.3.2", "pyrodigal_gv/tests/phage_Agate.fna", None),
    "arabidopsis_thaliana_chloroplast": ("deb", "python-biopython-doc",
                                         DOC + "python-biopython-doc/Tests/GenBank/NC_000932.gb.gz", None),
    "shigella_sonnei_53G_plasmids": ("deb", "unicycler-data", "usr/share/unicycler-data/sample_data/reference.fasta",
                                     None),
    "sodalis_phage_SO1": ("git", GVIZ, "genbank/enterobacteria_phage/NC_013600.gbk", None),
    "yersinia_phage_201_16": ("git", GVIZ, "genbank/yersinia_phage/NC_070914.gbk", None),
    "lambda_phage": ("deb", "bowtie2-examples", DOC + "bowtie2/examples/reference/lambda_virus.fa.gz", None),
}
SOURMASH = "sourmash-bio/sourmash@6ae9cd32d9ac2841c98415bc1c043597536a5470"
GENOMES_C = {
    "salmonella_enterica_LT2": ("git", SOURMASH, "data/GCF_000006945.1_ASM694v1_genomic.fna.gz", None),
    "sphingobacteriaceae_DW12": ("git", SOURMASH, "data/GCF_000783305.1_ASM78330v1_genomic.fna.gz", None),
    "tara_ase_mag_00031": ("git", SOURMASH, "tests/test-data/lca/TARA_ASE_MAG_00031.fa.gz", None),
    "akkermansia_muciniphila_500kb": ("git", SOURMASH, "doc/genomes/akkermansia.fa", None),
    "shewanella_baltica_OS185_500kb": ("git", SOURMASH, "doc/genomes/shew_os185.fa", None),
    "contig_MIIJ01000039": ("pypi", "pyrodigal==3.7.1", "pyrodigal/tests/data/MIIJ01000039.fna.gz", None),
    "phage_VT2_Sakai": ("git", "moshi4/pycirclize-data@f61f94aaf8739f4e1a736b49029e18bf6a7ae4ad",
                        "prokaryote/enterobacteria_phage.gbk", None),
    "escherichia_phage_Envy": ("git", GVIZ, "genbank/enterobacteria_phage/NC_031081.gbk", None),
}
